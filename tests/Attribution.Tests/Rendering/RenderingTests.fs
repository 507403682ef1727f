module RenderingTests

open System
open System.IO
open Expecto
open SkiaSharp
open Attribution.Rendering
open TestFiles

let private h, w = 8, 8
let private zeros () = Array.zeroCreate<float32> (h * w)
let private withValue (y, x) (v: float32) (map: float32[]) = map[y * w + x] <- v; map

let private decode (path: string) =
    Expect.isTrue (File.Exists path) $"{path} exists"
    let bitmap = SKBitmap.Decode path
    Expect.isNotNull bitmap "decodes as an image"
    bitmap

/// All pixel colours of one cell of the grid.
let private cellPixels (bitmap: SKBitmap) (layout: HeatmapLayout) row column =
    let struct (x0, y0) = layout.CellOrigin(row, column)
    [| for dy in 0 .. layout.CellSize - 1 do for dx in 0 .. layout.CellSize - 1 -> bitmap.GetPixel(x0 + dx, y0 + dy) |]

let private twoRows (maps: float32[] list) =
    [ HeatmapRow("Dress (pred Dress)", Array.create (h * w) 0.5f, ResizeArray maps, h, w)
      HeatmapRow("Ankle boot (pred Sneaker)", Array.init (h * w) (fun i -> float32 i / 63f), ResizeArray maps, h, w) ]

let private gridTests =
    testList "HeatmapGrid" [
        test "the PNG decodes with the documented size: 2 rows x (input + 2 methods), 112 px cells -> 510 x 320" {
            let path = Path.Combine(freshDir "render", "grid.png")
            HeatmapGrid.Render(path, [ "Saliency"; "Integrated Gradients" ], twoRows [ zeros () |> withValue (1, 1) 1f; zeros () |> withValue (3, 3) -1f ], HeatmapView.Absolute)
            use bitmap = decode path
            Expect.equal (bitmap.Width, bitmap.Height) (510, 320) "hand-computed size"
            let layout = HeatmapLayout(3, 2, 112)
            Expect.equal (bitmap.Width, bitmap.Height) (layout.Width, layout.Height) "layout size"
            Expect.equal (Directory.GetFiles(nonNull (Path.GetDirectoryName path)).Length) 1 "no temporary file left"
        }

        test "absolute view: a single peak is the colormap's top colour at its upscaled block and nowhere else in the cell" {
            let path = Path.Combine(freshDir "render", "peak.png")
            let peak = zeros () |> withValue (2, 5) 3f
            HeatmapGrid.Render(path, [ "Flat"; "Peak" ], twoRows [ zeros (); peak ], HeatmapView.Absolute)
            use bitmap = decode path
            let layout = HeatmapLayout(3, 2, 112)
            let scale = 112 / 8
            let struct (x0, y0) = layout.CellOrigin(1, 2)
            Expect.equal (bitmap.GetPixel(x0 + 5 * scale + scale / 2, y0 + 2 * scale + scale / 2)) Colormaps.InfernoTop "peak block centre"
            let cell = cellPixels bitmap layout 1 2
            Expect.equal (cell |> Array.filter ((=) Colormaps.InfernoTop) |> Array.length) (scale * scale) "exactly one 14x14 block is hot"
            Expect.equal (cell |> Array.filter ((=) Colormaps.InfernoBottom) |> Array.length) (112 * 112 - scale * scale) "the rest is the bottom colour"
            Expect.isTrue (cellPixels bitmap layout 0 1 |> Array.forall ((=) Colormaps.InfernoBottom)) "all-zero map is uniformly the bottom colour"
            let struct (ix, iy) = layout.CellOrigin(0, 0)
            Expect.equal (bitmap.GetPixel(ix + 3, iy + 3)) (SKColor(128uy, 128uy, 128uy)) "input image 0.5 is mid grey"
        }

        test "signed view: +p99 is the red end, -p99 the blue end, zero is white" {
            let path = Path.Combine(freshDir "render", "signed.png")
            let map = zeros () |> withValue (0, 0) 2f |> withValue (7, 7) -2f
            HeatmapGrid.Render(path, [ "Signed" ], twoRows [ map ], HeatmapView.Signed)
            use bitmap = decode path
            let layout = HeatmapLayout(2, 2, 112)
            let struct (x0, y0) = layout.CellOrigin(0, 1)
            Expect.equal (bitmap.GetPixel(x0 + 1, y0 + 1)) Colormaps.SignedPositive "positive"
            Expect.equal (bitmap.GetPixel(x0 + 110, y0 + 110)) Colormaps.SignedNegative "negative"
            Expect.equal (bitmap.GetPixel(x0 + 56, y0 + 56)) SKColors.White "zero"
        }

        test "constant maps render without NaN: a positive constant is uniformly top colour, zero is bottom / white" {
            let dir = freshDir "render"
            let constant = Array.create (h * w) 0.3f
            HeatmapGrid.Render(Path.Combine(dir, "abs.png"), [ "Const"; "Zero" ], twoRows [ constant; zeros () ], HeatmapView.Absolute)
            HeatmapGrid.Render(Path.Combine(dir, "signed.png"), [ "Zero" ], twoRows [ zeros () ], HeatmapView.Signed)
            use abs = decode (Path.Combine(dir, "abs.png"))
            let layout = HeatmapLayout(3, 2, 112)
            Expect.isTrue (cellPixels abs layout 0 1 |> Array.forall ((=) Colormaps.InfernoTop)) "constant -> top"
            Expect.isTrue (cellPixels abs layout 0 2 |> Array.forall ((=) Colormaps.InfernoBottom)) "zero -> bottom"
            use signed = decode (Path.Combine(dir, "signed.png"))
            Expect.isTrue (cellPixels signed (HeatmapLayout(2, 2, 112)) 1 1 |> Array.forall ((=) SKColors.White)) "zero -> white"
            Expect.isFalse (MapNormalisation.Absolute constant |> Array.exists Single.IsNaN) "no NaN"
        }

        test "a NaN in a map is refused, naming the row and the method" {
            let map = zeros () |> withValue (1, 1) nanf
            let e = Expect.throwsC (fun () -> HeatmapGrid.Render(Path.Combine(freshDir "render", "nan.png"), [ "Broken" ], twoRows [ map ], HeatmapView.Absolute)) id
            Expect.stringContains e.Message "Dress (pred Dress)" "row"
            Expect.stringContains e.Message "Broken" "method"
        }

        test "a three-channel input is drawn in colour: planes R, G, B, the left half red and the right half blue" {
            let path = Path.Combine(freshDir "render", "rgb.png")
            let plane = h * w
            let rgb = Array.init (3 * plane) (fun i -> let c, x = i / plane, (i % plane) % w in if (c = 0 && x < w / 2) || (c = 2 && x >= w / 2) then 1f else 0f)
            HeatmapGrid.Render(path, [ "Flat" ], [ HeatmapRow("colour", rgb, ResizeArray [ zeros () ], h, w) ], HeatmapView.Absolute)
            use bitmap = decode path
            let layout = HeatmapLayout(2, 1, 112)
            let struct (ix, iy) = layout.CellOrigin(0, 0)
            Expect.equal (bitmap.GetPixel(ix + 10, iy + 50)) (SKColor(255uy, 0uy, 0uy)) "left half red"
            Expect.equal (bitmap.GetPixel(ix + 100, iy + 50)) (SKColor(0uy, 0uy, 255uy)) "right half blue"
        }

        test "one map per title is required" {
            Expect.throwsT<ArgumentException> (fun () -> HeatmapGrid.Render(Path.Combine(freshDir "render", "x.png"), [ "A"; "B" ], twoRows [ zeros () ], HeatmapView.Absolute)) "count mismatch"
        }

        test "the captions state the normalisation" {
            Expect.stringContains (HeatmapGrid.Caption HeatmapView.Absolute) "99th percentile" "absolute"
            Expect.stringContains (HeatmapGrid.Caption HeatmapView.Signed) "white = 0" "signed"
        }
    ]

let private normalisationTests =
    testList "MapNormalisation" [
        test "Quantile interpolates linearly like numpy: p99 of 0..100 is 99, median of 1..4 is 2.5" {
            Expect.floatClose Accuracy.veryHigh (MapNormalisation.Quantile(Array.init 101 float32, 0.99)) 99.0 "p99"
            Expect.floatClose Accuracy.veryHigh (MapNormalisation.Quantile([| 4f; 1f; 3f; 2f |], 0.5)) 2.5 "median"
        }
        test "colormap ends are matplotlib's inferno ends and the diverging map is white at zero" {
            Expect.equal Colormaps.InfernoTop (SKColor(0xfcuy, 0xffuy, 0xa4uy)) "inferno(1) = #fcffa4"
            Expect.equal (Colormaps.Sequential 1f) Colormaps.InfernoTop "Sequential(1) is the top"
            Expect.equal (Colormaps.Sequential 0f) (SKColor(0uy, 0uy, 4uy)) "inferno(0) = #000004"
            Expect.equal (Colormaps.Diverging 0f) SKColors.White "zero -> white"
            Expect.isGreaterThan (int (Colormaps.Diverging 1f).Red) (int (Colormaps.Diverging 1f).Blue) "+1 is red"
            Expect.isGreaterThan (int (Colormaps.Diverging -1f).Blue) (int (Colormaps.Diverging -1f).Red) "-1 is blue"
            let luminance (c: SKColor) = 0.2126 * float c.Red + 0.7152 * float c.Green + 0.0722 * float c.Blue
            let steps = [ for i in 0 .. 20 -> luminance (Colormaps.Sequential(float32 i / 20f)) ]
            Expect.isTrue (List.pairwise steps |> List.forall (fun (a, b) -> b > a)) "sequential map brightens monotonically"
        }
        test "Signed is odd and bounded: Signed(-m) = -Signed(m), values in [-1, 1]" {
            let m = Array.init 100 (fun i -> float32 (sin (float i)) * 5f)
            let s, t = MapNormalisation.Signed m, MapNormalisation.Signed(Array.map (~-) m)
            Expect.equal t (Array.map (~-) s) "odd"
            Expect.isTrue (s |> Array.forall (fun v -> v >= -1f && v <= 1f)) "bounded"
        }
    ]

let private otherTests =
    testList "CurvePlot and PngImage" [
        test "CurvePlot writes a PNG of the requested size, default 800 x 500" {
            let dir = freshDir "render"
            let series = [ CurveSeries("insertion", [| 0.0; 0.5; 1.0 |], [| 0.1; 0.6; 0.9 |]); CurveSeries("deletion", [| 0.0; 0.5; 1.0 |], [| 0.9; 0.3; 0.1 |]) ]
            CurvePlot.Render(Path.Combine(dir, "c.png"), "Insertion / deletion", "fraction of pixels", "p(class)", series)
            CurvePlot.Render(Path.Combine(dir, "small.png"), "t", "x", "y", series, width = 640, height = 400)
            use a = decode (Path.Combine(dir, "c.png"))
            use b = decode (Path.Combine(dir, "small.png"))
            Expect.equal (a.Width, a.Height) (800, 500) "default size"
            Expect.equal (b.Width, b.Height) (640, 400) "custom size"
        }
        test "CurvePlot refuses series whose X and Y lengths differ" {
            Expect.throwsT<ArgumentException> (fun () -> CurvePlot.Render(Path.Combine(freshDir "render", "bad.png"), "t", "x", "y", [ CurveSeries("s", [| 1.0; 2.0 |], [| 1.0 |]) ])) "length mismatch"
        }
        test "PngImage.SaveGrayscale upscales each pixel to a scale x scale block of the right grey" {
            let path = Path.Combine(freshDir "render", "g.png")
            PngImage.SaveGrayscale(path, [| 0f; 0.5f; 1f; 2f; -1f; 0.25f |], 2, 3, 4)
            use bitmap = decode path
            Expect.equal (bitmap.Width, bitmap.Height) (12, 8) "w*scale x h*scale"
            Expect.equal (bitmap.GetPixel(5, 1)) (SKColor(128uy, 128uy, 128uy)) "0.5 -> 128"
            Expect.equal (bitmap.GetPixel(11, 3)) SKColors.White "1 -> white"
            Expect.equal (bitmap.GetPixel(1, 5)) SKColors.White "2 clipped to white"
            Expect.equal (bitmap.GetPixel(5, 5)) SKColors.Black "-1 clipped to black"
        }
    ]

[<Tests>]
let tests = testList "Rendering" [ gridTests; normalisationTests; otherTests ]
