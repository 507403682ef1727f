/// A user's image folder: torchvision's ImageFolder conventions (class order, image order, Resize, CenterCrop,
/// Grayscale, ToTensor) on images written here with SkiaSharp, and the errors a wrong folder gets.
module ImageFolderTests

open System
open System.IO
open System.Runtime.InteropServices
open Expecto
open SkiaSharp
open TorchSharp
open Attribution.Data

/// A fresh folder for one test, deleted afterwards whatever happens.
let private inFolder (name: string) (body: string -> unit) =
    let root = TestFiles.freshDir name
    try body root finally Directory.Delete(root, true)

let private makeParent (path: string) = Directory.CreateDirectory(Path.GetDirectoryName(path) |> nonNull) |> ignore

/// Writes a w x h image whose pixel (x, y) is rgba x y, unpremultiplied, in the given format.
let private writeImage (format: SKEncodedImageFormat) (path: string) (w: int) (h: int) (rgba: int -> int -> byte * byte * byte * byte) =
    makeParent path
    use bitmap = new SKBitmap(SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul))
    let bytes = Array.zeroCreate<byte> (w * h * 4)
    for y in 0 .. h - 1 do
        for x in 0 .. w - 1 do
            let r, g, b, a = rgba x y
            let i = (y * w + x) * 4
            bytes.[i] <- r; bytes.[i + 1] <- g; bytes.[i + 2] <- b; bytes.[i + 3] <- a
    Marshal.Copy(bytes, 0, bitmap.GetPixels(), bytes.Length)
    use data = bitmap.Encode(format, 95)
    File.WriteAllBytes(path, data.ToArray())

let private png path w h (rgb: int -> int -> int * int * int) =
    writeImage SKEncodedImageFormat.Png path w h (fun x y -> let r, g, b = rgb x y in byte r, byte g, byte b, 255uy)

/// Writes a 24-bit BMP by hand (SkiaSharp decodes BMP but has no BMP encoder): headers, then rows bottom-up as B, G, R, each padded to 4 bytes.
let private writeBmp (path: string) (w: int) (h: int) (rgb: int -> int -> int * int * int) =
    makeParent path
    let stride = (3 * w + 3) / 4 * 4
    use file = new BinaryWriter(File.Create path)
    file.Write("BM"B); file.Write(54 + stride * h); file.Write(0); file.Write(54)
    file.Write(40); file.Write(w); file.Write(h); file.Write(1s); file.Write(24s)
    file.Write(0); file.Write(stride * h); file.Write(2835); file.Write(2835); file.Write(0); file.Write(0)
    for y in h - 1 .. -1 .. 0 do
        let row = Array.zeroCreate<byte> stride
        for x in 0 .. w - 1 do
            let r, g, b = rgb x y
            row.[3 * x] <- byte b; row.[3 * x + 1] <- byte g; row.[3 * x + 2] <- byte r
        file.Write row

/// A 2x2 PNG of one colour whose red value identifies it.
let private marker path (id: int) = png path 2 2 (fun _ _ -> id, 0, 0)

let private rgbOptions = ImageFolderOptions()

/// The pixel values of a dataset as a flat array with an accessor image, channel, row, column -> value * 255.
let private levels (d: ImageDataset) =
    let v = d.Images.data<float32>().ToArray()
    let c, h, w = int d.Images.shape.[1], int d.Images.shape.[2], int d.Images.shape.[3]
    fun n ch y x -> float v.[((n * c + ch) * h + y) * w + x] * 255.0

let private labelsOf (d: ImageDataset) = d.Labels.data<int64>().ToArray()

/// The red value of each image's top-left pixel: the id a marker image carries.
let private markers (d: ImageDataset) =
    let at = levels d
    [ for n in 0 .. d.Count - 1 -> int (Math.Round(at n 0 0 0)) ]

let private shapeOf (d: ImageDataset) = d.Images.shape |> Array.map int

let private throwsWith<'e when 'e :> exn> (f: unit -> unit) (fragments: string list) =
    let e = Expect.throwsC f id
    Expect.isTrue (e :? 'e) $"{typeof<'e>.Name} expected; got {e.GetType().Name}: {e.Message}"
    for fragment in fragments do
        Expect.stringContains e.Message fragment "the message names what is wrong"

let private conventionTests =
    testList "torchvision conventions" [
        test "classes are the sub-folders in code-point order (Python's sorted), hidden ones skipped; label k is the k-th class" {
            inFolder "if-classes" (fun root ->
                // Code-point order: 'B' < 'Z10' < 'Z9' < '_x' < 'a' < 'b' < U+FF21 < U+1F600 (UTF-16 order would put the
                // emoji, a surrogate pair, before U+FF21).
                let names = [ "b"; "\U0001F600"; "Z9"; "a"; "_x"; "\uFF21"; "Z10"; "B" ]
                names |> List.iteri (fun i n -> marker (Path.Combine(root, n, "img.png")) (10 * (i + 1)))
                marker (Path.Combine(root, ".ipynb_checkpoints", "img.png")) 250
                File.WriteAllText(Path.Combine(root, "a", "notes.txt"), "not an image")
                marker (Path.Combine(root, "a", ".hidden.png")) 251
                use data = ImageFolder.Load(root, rgbOptions)
                let expected = [ "B"; "Z10"; "Z9"; "_x"; "a"; "b"; "\uFF21"; "\U0001F600" ]
                Expect.sequenceEqual data.Train.ClassNames expected "code-point order"
                Expect.sequenceEqual (labelsOf data.Train) [ 0L .. 7L ] "one image per class, label = rank of its class"
                let idOf n = 10 * (List.findIndex ((=) n) names + 1)
                Expect.sequenceEqual (markers data.Train) (expected |> List.map idOf) "each image sits under its class's label")
        }

        test "a class's images in torchvision's walk order: its folder first, then sub-folders by path ('sub' < 'sub-x' < 'sub/deep'), files by name, any extension case" {
            inFolder "if-order" (fun root ->
                let cls = Path.Combine(root, "only")
                marker (Path.Combine(cls, "b.png")) 20
                marker (Path.Combine(cls, "a.PNG")) 10
                marker (Path.Combine(cls, "sub", "deep", "a.png")) 50
                marker (Path.Combine(cls, "sub-x", "a.png")) 40
                marker (Path.Combine(cls, "sub", "z.png")) 30
                writeBmp (Path.Combine(cls, "c.Bmp")) 2 2 (fun _ _ -> 25, 0, 0)
                use data = ImageFolder.Load(root, rgbOptions)
                Expect.sequenceEqual (markers data.Train) [ 10; 20; 25; 30; 40; 50 ] "os.walk sorted by folder path, then file name")
        }

        test "PNG pixels come back exactly as R, G, B planes divided by 255; alpha is dropped, not composited or premultiplied" {
            inFolder "if-pixels" (fun root ->
                let r x y = 10 * x + 1
                let g x y = 50 * y + 2
                let b x y = 200 - 7 * x - 3 * y
                let a x y = [| 255; 128; 1; 0 |].[x]
                writeImage SKEncodedImageFormat.Png (Path.Combine(root, "c", "p.png")) 4 3
                    (fun x y -> byte (r x y), byte (g x y), byte (b x y), byte (a x y))
                use data = ImageFolder.Load(root, rgbOptions)
                Expect.sequenceEqual (shapeOf data.Train) [ 1; 3; 3; 4 ] "[N, C, H, W] with C = 3"
                let v = data.Train.Images.data<float32>().ToArray()
                let mutable i = 0
                for channel in [ r; g; b ] do
                    for y in 0 .. 2 do
                        for x in 0 .. 3 do
                            Expect.equal v.[i] (float32 (channel x y) / 255f) $"channel value at ({x}, {y}), alpha {a x y}"
                            i <- i + 1)
        }

        test "grayscale is PIL's convert('L'): red, green, blue give 76, 150, 29 and every colour lies within half a level of 0.299 R + 0.587 G + 0.114 B" {
            inFolder "if-gray" (fun root ->
                let colours = [| 255, 0, 0; 0, 255, 0; 0, 0, 255; 255, 255, 255; 10, 200, 30; 123, 45, 67; 1, 2, 3; 250, 251, 249 |]
                png (Path.Combine(root, "c", "g.png")) colours.Length 1 (fun x _ -> colours.[x])
                use data = ImageFolder.Load(root, ImageFolderOptions(Channels = "grayscale"))
                Expect.sequenceEqual (shapeOf data.Train) [ 1; 1; 1; colours.Length ] "one channel"
                let at = levels data.Train
                Expect.sequenceEqual [ for x in 0 .. 3 -> at 0 0 0 x |> Math.Round ] [ 76.0; 150.0; 29.0; 255.0 ] "PIL's values for primaries and white"
                colours |> Array.iteri (fun x (r, g, b) ->
                    let luma = 0.299 * float r + 0.587 * float g + 0.114 * float b
                    let value = at 0 0 0 x
                    Expect.floatClose Accuracy.high value (Math.Round value) "a whole level"
                    Expect.isLessThanOrEqual (abs (value - luma)) 0.5 $"within half a level of ITU-R 601-2 luma for {(r, g, b)}"))
        }

        test "JPEG decodes close to its source (mean error under 1% of the range)" {
            inFolder "if-jpeg" (fun root ->
                let rgb x y = 40 + 5 * x, 30 + 6 * y, 200 - 2 * x - 2 * y
                writeImage SKEncodedImageFormat.Jpeg (Path.Combine(root, "c", "j.jpg")) 32 32 (fun x y ->
                    let r, g, b = rgb x y in byte r, byte g, byte b, 255uy)
                use data = ImageFolder.Load(root, rgbOptions)
                let at = levels data.Train
                let errors =
                    [ for y in 0 .. 31 do
                        for x in 0 .. 31 do
                            let r, g, b = rgb x y
                            yield! [ abs (at 0 0 y x - float r); abs (at 0 1 y x - float g); abs (at 0 2 y x - float b) ] ]
                Expect.isLessThan (List.average errors) 2.55 "mean absolute error < 1% of 255"
                Expect.isLessThan (List.max errors) 25.5 "no value off by 10% of 255")
        }
    ]

let private resizeTests =
    testList "resize and centre crop" [
        test "resize to one number sets the shorter side and truncates the longer (torchvision's int(size * long / short)); two numbers are [height, width]" {
            // (height, width, resize) -> expected (height, width); 20 * 40 / 30 = 26.7 -> 26 and 5 * 10 / 7 = 7.1 -> 7.
            let cases =
                [ (30, 40, [| 20 |]), (20, 26)
                  (50, 30, [| 12 |]), (20, 12)
                  (7, 10, [| 5 |]), (5, 7)
                  (9, 9, [| 4 |]), (4, 4)
                  (10, 30, [| 15 |]), (15, 45)
                  (30, 40, [| 8; 12 |]), (8, 12) ]
            for (h, w, size), (eh, ew) in cases do
                inFolder "if-resize" (fun root ->
                    png (Path.Combine(root, "c", "i.png")) w h (fun _ _ -> 9, 9, 9)
                    use data = ImageFolder.Load(root, ImageFolderOptions(Resize = size))
                    Expect.sequenceEqual (shapeOf data.Train) [ 1; 3; eh; ew ] $"{h}x{w} resized with {size}")
        }

        test "a constant image stays exactly constant when resized down or up" {
            inFolder "if-constant" (fun root ->
                png (Path.Combine(root, "c", "i.png")) 17 13 (fun _ _ -> 77, 140, 3)
                for size in [ [| 5 |]; [| 20; 31 |] ] do
                    use data = ImageFolder.Load(root, ImageFolderOptions(Resize = size))
                    let at = levels data.Train
                    let s = shapeOf data.Train
                    let h, w = s.[2], s.[3]
                    for c, expected in [ 0, 77.0; 1, 140.0; 2, 3.0 ] do
                        for y in 0 .. h - 1 do
                            for x in 0 .. w - 1 do
                                Expect.floatClose Accuracy.high (at 0 c y x) expected $"channel {c} at ({x}, {y}), size {size}")
        }

        test "a 2x downscale of a linear ramp keeps the ramp's mean, and inside samples the ramp at the block centres" {
            inFolder "if-ramp" (fun root ->
                let ramp (x: float) (y: float) = 3.0 * x + 2.0 * y, 255.0 - 5.0 * x, 6.0 * y
                png (Path.Combine(root, "c", "r.png")) 40 40 (fun x y -> let r, g, b = ramp (float x) (float y) in int r, int g, int b)
                use data = ImageFolder.Load(root, ImageFolderOptions(Resize = [| 20; 20 |]))
                let at = levels data.Train
                let channel c (r, g, b) = [| r; g; b |].[c]
                for c in 0 .. 2 do
                    let source = List.average [ for y in 0 .. 39 do for x in 0 .. 39 -> channel c (ramp (float x) (float y)) ]
                    let resized = List.average [ for y in 0 .. 19 do for x in 0 .. 19 -> at 0 c y x ]
                    // Each output is rounded to a whole level, so the means may differ by at most half a level.
                    Expect.isLessThanOrEqual (abs (resized - source)) 0.5 $"channel {c}: mean {resized} vs the source's {source}"
                    for y in 1 .. 18 do
                        for x in 1 .. 18 do
                            let centre = channel c (ramp (2.0 * float x + 0.5) (2.0 * float y + 0.5))
                            Expect.isLessThanOrEqual (abs (at 0 c y x - centre)) 0.5 $"channel {c} at ({x}, {y})")
        }

        test "downscaling is antialiased: a one-pixel line every 3 columns shrunk 3x spreads to a third of its level (plain bilinear would keep 255)" {
            inFolder "if-antialias" (fun root ->
                png (Path.Combine(root, "c", "l.png")) 30 12 (fun x _ -> if x % 3 = 1 then 255, 255, 255 else 0, 0, 0)
                use data = ImageFolder.Load(root, ImageFolderOptions(Resize = [| 4; 10 |]))
                let at = levels data.Train
                // The triangle filter 3 pixels wide weighs the line's column 1/3 (weights 1, 2, 3, 2, 1 over 9).
                for y in 0 .. 3 do
                    for x in 1 .. 8 do
                        Expect.floatClose Accuracy.high (at 0 0 y x) 85.0 $"column {x}, row {y}")
        }

        test "centre crop starts at round((size - crop) / 2) with ties to even, and pads with zeros, (crop - size) // 2 before and the rest after" {
            inFolder "if-crop" (fun root ->
                // A 10 (high) x 11 (wide) image whose red value encodes the column and green the row, never zero.
                png (Path.Combine(root, "c", "i.png")) 11 10 (fun x y -> 20 * x + 5, 20 * y + 5, 0)
                let crop (size: int[]) =
                    use data = ImageFolder.Load(root, ImageFolderOptions(CenterCrop = size))
                    let at = levels data.Train
                    let s = shapeOf data.Train
                    let h, w = s.[2], s.[3]
                    // For each output pixel, the source (column, row) it holds, or None for padding.
                    let source y x =
                        let r, g = at 0 0 y x, at 0 1 y x
                        if r = 0.0 && g = 0.0 then None else Some(int ((r - 5.0) / 20.0), int ((g - 5.0) / 20.0))
                    h, w, source
                // (crop, first source column, first source row): 11 - 6 = 5 -> 2.5 -> 2 and 10 - 5 = 5 -> 2 (not 3);
                // 11 - 8 = 3 -> 1.5 -> 2 (not 1); 11 - 4 = 7 -> 3.5 -> 4; 10 - 4 = 6 -> 3.
                for size, left, top in [ [| 5; 6 |], 2, 2; [| 7; 8 |], 2, 2; [| 4 |], 4, 3 ] do
                    let h, w, source = crop size
                    Expect.equal (h, w) (size.[0], size.[size.Length - 1]) $"crop {size} size"
                    for y in 0 .. h - 1 do
                        for x in 0 .. w - 1 do
                            Expect.equal (source y x) (Some(left + x, top + y)) $"crop {size} at ({x}, {y})"
                // 14 x 16 on 10 x 11: rows padded 2 + 2, columns 2 before and 3 after.
                let h, w, source = crop [| 14; 16 |]
                for y in 0 .. h - 1 do
                    for x in 0 .. w - 1 do
                        let inside = y >= 2 && y < 12 && x >= 2 && x < 13
                        Expect.equal (source y x) (if inside then Some(x - 2, y - 2) else None) $"padded crop at ({x}, {y})"
                // Padding along one axis, cropping along the other: rows start at round(6 / 2) = 3.
                let h, w, source = crop [| 4; 13 |]
                for y in 0 .. h - 1 do
                    for x in 0 .. w - 1 do
                        Expect.equal (source y x) (if x >= 1 && x < 12 then Some(x - 1, y + 3) else None) $"mixed crop at ({x}, {y})")
        }
    ]

let private layoutTests =
    testList "layout" [
        test "train/ and test/ are separate splits with the same classes; the files are left as they were" {
            inFolder "if-split" (fun root ->
                for split, counts in [ "train", [ 3; 2 ]; "test", [ 1; 2 ] ] do
                    for cls, n in List.zip [ "cat"; "dog" ] counts do
                        for i in 1 .. n do marker (Path.Combine(root, split, cls, $"{i}.png")) (i * 10)
                let snapshot () =
                    Directory.GetFiles(root, "*", SearchOption.AllDirectories)
                    |> Array.sort |> Array.map (fun f -> f, File.GetLastWriteTimeUtc f, File.ReadAllBytes f |> Convert.ToBase64String)
                let before = snapshot ()
                use data = ImageFolder.Load(root, rgbOptions)
                ImageFolder.ContentHash root |> ignore
                Expect.isTrue data.SeparateTest "separate test split"
                Expect.sequenceEqual (labelsOf data.Train) [ 0L; 0L; 0L; 1L; 1L ] "train labels"
                Expect.sequenceEqual (labelsOf data.Test) [ 0L; 1L; 1L ] "test labels"
                Expect.sequenceEqual data.Test.ClassNames [ "cat"; "dog" ] "class names"
                Expect.sequenceEqual (snapshot ()) before "nothing written, touched or removed")
        }

        test "a folder without train/ and test/ is one set used for both; the test set outlives disposing the training set" {
            inFolder "if-shared" (fun root ->
                for cls in [ "a"; "b" ] do marker (Path.Combine(root, cls, "1.png")) (if cls = "a" then 30 else 60)
                use data = ImageFolder.Load(root, rgbOptions)
                Expect.isFalse data.SeparateTest "one set"
                let trainMarkers = markers data.Train
                data.Train.Dispose()
                Expect.sequenceEqual (markers data.Test) trainMarkers "the same images"
                Expect.sequenceEqual (markers data.Test) [ 30; 60 ] "in class order")
        }

        test "loading and disposing leaves no tensor alive (resize, crop and a shared test set included)" {
            inFolder "if-leak" (fun root ->
                for cls in [ "a"; "b" ] do png (Path.Combine(root, cls, "1.png")) 9 7 (fun x y -> x, y, 1)
                let once () =
                    use data = ImageFolder.Load(root, ImageFolderOptions(Resize = [| 5 |], CenterCrop = [| 4; 8 |]))
                    ()
                once ()
                let before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount
                for _ in 1 .. 3 do once ()
                Expect.equal TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount before "live tensors")
        }

        test "limit takes the first images of each class in turn and keeps them in class order" {
            inFolder "if-limit" (fun root ->
                for cls, n in [ "a", 5; "b", 1; "c", 3 ] do
                    for i in 1 .. n do marker (Path.Combine(root, cls, $"{i}.png")) i
                use data = ImageFolder.Load(root, ImageFolderOptions(Limit = 6))
                // Turns: a1 b1 c1, a2 c2 (b has run out), a3.
                Expect.sequenceEqual (labelsOf data.Train) [ 0L; 0L; 0L; 1L; 2L; 2L ] "labels"
                Expect.sequenceEqual (markers data.Train) [ 1; 2; 3; 1; 1; 2 ] "the first files of each class")
        }

        test "the content hash follows the bytes and names of the images, not where the folder is or files the loader ignores" {
            inFolder "if-hash" (fun parent ->
                let a, b = Path.Combine(parent, "a"), Path.Combine(parent, "b")
                for root in [ a; b ] do
                    marker (Path.Combine(root, "x", "1.png")) 10
                    marker (Path.Combine(root, "y", "1.png")) 20
                let h = ImageFolder.ContentHash a
                Expect.equal (ImageFolder.ContentHash b) h "a copy elsewhere"
                File.WriteAllText(Path.Combine(b, "x", "readme.txt"), "ignored by the loader")
                Expect.equal (ImageFolder.ContentHash b) h "a file the loader ignores"
                marker (Path.Combine(b, "y", "1.png")) 21
                Expect.notEqual (ImageFolder.ContentHash b) h "changed pixels"
                marker (Path.Combine(b, "y", "1.png")) 20
                Expect.equal (ImageFolder.ContentHash(b, Path.Combine(parent, "memo"))) h "restored, and memoised hashes agree"
                File.Move(Path.Combine(b, "y", "1.png"), Path.Combine(b, "y", "2.png"))
                Expect.notEqual (ImageFolder.ContentHash b) h "a renamed image")
        }
    ]

let private errorTests =
    testList "errors" [
        test "a missing folder" {
            let root = Path.Combine(Path.GetTempPath(), $"no-such-folder-{Guid.NewGuid():N}")
            throwsWith<DirectoryNotFoundException> (fun () -> ImageFolder.Load(root, rgbOptions) |> ignore) [ root ]
        }

        test "no class folders names the folder and shows the layout" {
            inFolder "if-flat" (fun root ->
                marker (Path.Combine(root, "1.png")) 1
                throwsWith<InvalidDataException> (fun () -> ImageFolder.Load(root, rgbOptions) |> ignore)
                    [ root; "the ImageFolder layout is"; "<class>/<image>.png" ])
        }

        test "a class folder without images is named" {
            inFolder "if-empty" (fun root ->
                marker (Path.Combine(root, "full", "1.png")) 1
                Directory.CreateDirectory(Path.Combine(root, "empty")) |> ignore
                File.WriteAllText(Path.Combine(root, "empty", "notes.txt"), "not an image")
                throwsWith<InvalidDataException> (fun () -> ImageFolder.Load(root, rgbOptions) |> ignore)
                    [ Path.Combine(root, "empty"); "no image" ])
        }

        test "a file that does not decode is named, whether its header or its pixels are bad" {
            inFolder "if-broken" (fun root ->
                let noise x y = (x * 37 + y * 11) % 256, (x * y) % 256, (x + y * 53) % 256
                png (Path.Combine(root, "c", "good.png")) 64 64 noise
                let garbage = Path.Combine(root, "c", "garbage.png")
                File.WriteAllText(garbage, "not a png")
                throwsWith<InvalidDataException> (fun () -> ImageFolder.Load(root, rgbOptions) |> ignore) [ garbage; "does not decode" ]
                File.Delete garbage
                let truncated = Path.Combine(root, "c", "truncated.png")
                png truncated 64 64 noise
                let bytes = File.ReadAllBytes truncated
                File.WriteAllBytes(truncated, bytes.[.. bytes.Length / 2])
                throwsWith<InvalidDataException> (fun () -> ImageFolder.Load(root, rgbOptions) |> ignore) [ truncated; "does not decode" ])
        }

        test "images of different sizes name two files and their sizes, and say to add resize or center_crop" {
            inFolder "if-sizes" (fun root ->
                let first, second = Path.Combine(root, "a", "1.png"), Path.Combine(root, "b", "2.png")
                png first 4 3 (fun _ _ -> 1, 1, 1)
                png second 5 3 (fun _ _ -> 1, 1, 1)
                throwsWith<InvalidDataException> (fun () -> ImageFolder.Load(root, rgbOptions) |> ignore)
                    [ first; "3x4"; second; "3x5"; "resize"; "center_crop" ]
                // One shorter side keeps different aspect ratios different; two numbers or a crop make them equal.
                throwsWith<InvalidDataException> (fun () -> ImageFolder.Load(root, ImageFolderOptions(Resize = [| 6 |])) |> ignore)
                    [ "after resize"; "6x8"; "6x10" ]
                use resized = ImageFolder.Load(root, ImageFolderOptions(Resize = [| 6; 6 |]))
                use cropped = ImageFolder.Load(root, ImageFolderOptions(CenterCrop = [| 3 |]))
                Expect.equal resized.Train.Count 2 "both images"
                Expect.equal cropped.Train.Count 2 "both images")
        }

        test "train/ and test/ with different classes name the classes that differ" {
            inFolder "if-mismatch" (fun root ->
                for split, classes in [ "train", [ "cat"; "dog"; "emu" ]; "test", [ "cat"; "dog"; "fox" ] ] do
                    for cls in classes do marker (Path.Combine(root, split, cls, "1.png")) 1
                throwsWith<InvalidDataException> (fun () -> ImageFolder.Load(root, rgbOptions) |> ignore)
                    [ "only in train: 'emu'"; "only in test: 'fox'" ])
        }

        test "train/ without test/ is refused rather than read as a class named train" {
            inFolder "if-half" (fun root ->
                marker (Path.Combine(root, "train", "cat", "1.png")) 1
                throwsWith<InvalidDataException> (fun () -> ImageFolder.Load(root, rgbOptions) |> ignore) [ "no 'test' folder" ])
        }

        test "a TIFF, which torchvision would read, is refused by name rather than skipped" {
            inFolder "if-tiff" (fun root ->
                marker (Path.Combine(root, "c", "1.png")) 1
                let tiff = Path.Combine(root, "c", "2.TIF")
                File.WriteAllBytes(tiff, [| 0uy |])
                throwsWith<InvalidDataException> (fun () -> ImageFolder.Load(root, rgbOptions) |> ignore) [ tiff; "convert it to PNG" ])
        }

        test "invalid options say which option and what is allowed" {
            inFolder "if-options" (fun root ->
                marker (Path.Combine(root, "c", "1.png")) 1
                let load options = fun () -> ImageFolder.Load(root, options) |> ignore
                throwsWith<ArgumentException> (load (ImageFolderOptions(Resize = [| 0 |]))) [ "resize"; "[0]" ]
                throwsWith<ArgumentException> (load (ImageFolderOptions(CenterCrop = [| 1; 2; 3 |]))) [ "center_crop" ]
                throwsWith<ArgumentException> (load (ImageFolderOptions(Channels = "rgba"))) [ "\"rgb\""; "\"grayscale\""; "rgba" ]
                throwsWith<ArgumentException> (load (ImageFolderOptions(Limit = 0))) [ "limit" ])
        }
    ]

/// Both splits of two loads hold the same pixels, labels and class names (bit for bit).
let private expectSameData (a: ImageFolderData) (b: ImageFolderData) (what: string) =
    use _ = torch.NewDisposeScope()
    Expect.equal a.SeparateTest b.SeparateTest $"{what}: the same split"
    for x, y, split in [ a.Train, b.Train, "train"; a.Test, b.Test, "test" ] do
        Expect.sequenceEqual x.Images.shape y.Images.shape $"{what}: {split} shape"
        Expect.isTrue (x.Images.equal(y.Images).all().item<bool>()) $"{what}: {split} pixels bit for bit"
        Expect.sequenceEqual (labelsOf x) (labelsOf y) $"{what}: {split} labels"
        Expect.sequenceEqual x.ClassNames y.ClassNames $"{what}: {split} class names"

/// An image folder of a few distinct RGB images: split into train/ and test/, or one set.
let private writeVariedFolder (root: string) (split: bool) =
    let splits = if split then [ "train", 3; "test", 2 ] else [ "", 3 ]
    for folder, n in splits do
        for k, cls in List.indexed [ "cat"; "dog" ] do
            for i in 1 .. n do
                png (Path.Combine(root, folder, cls, $"{i}.png")) 6 5 (fun x y -> (37 * i + 11 * x) % 256, (53 * k + 7 * y) % 256, (x * y + i) % 256)

let private decodedTests =
    testList "decoded once, then mapped" [
        test "the mapped images equal the decoded ones, with or without a split and with resize and crop; a second load reads only the decoded copy" {
            inFolder "if-decoded" (fun parent ->
                for split in [ true; false ] do
                    let root = Path.Combine(parent, $"images-{split}")
                    writeVariedFolder root split
                    let options = ImageFolderOptions(Resize = [| 4 |], CenterCrop = [| 4; 3 |])
                    let decoded = Path.Combine(parent, $"decoded-{split}")
                    let lines = Collections.Generic.List<string>()
                    use direct = ImageFolder.Load(root, options)
                    use first = DecodedImageFolder.Load(root, options, decoded, Action<string>(lines.Add))
                    expectSameData first direct "first load"
                    Expect.exists lines (fun l -> l.Contains "decoding") "the first load says it decodes"
                    Expect.isNull (DecodedImageFolder.Verify decoded) "the decoded copy verifies"
                    // the source is no longer read: moved away, the decoded copy still serves
                    Directory.Move(root, root + "-moved")
                    lines.Clear()
                    use second = DecodedImageFolder.Load(root, options, decoded, Action<string>(lines.Add))
                    expectSameData second direct "second load"
                    Expect.isEmpty lines "nothing decoded the second time"
                    Expect.isEmpty (Directory.GetDirectories(parent, "*.tmp-*")) "no temporary folder left")
        }

        test "writing into the mapped images changes this process's copy only, never the decoded file" {
            inFolder "if-decoded-cow" (fun parent ->
                let root = Path.Combine(parent, "images")
                writeVariedFolder root false
                let decoded = Path.Combine(parent, "decoded")
                use reference = ImageFolder.Load(root, rgbOptions)
                do
                    use data = DecodedImageFolder.Load(root, rgbOptions, decoded)
                    data.Train.Images.fill_(7.0f) |> ignore
                    Expect.isTrue (data.Train.Images.eq(TorchSharp.Scalar.op_Implicit 7.0f).all().item<bool>()) "written here"
                Expect.isNull (DecodedImageFolder.Verify decoded) "the file is as decoded"
                use again = DecodedImageFolder.Load(root, rgbOptions, decoded)
                expectSameData again reference "a fresh map")
        }

        test "a truncated decoded file is found by its size and decoded again, saying why; a changed byte is found by verify" {
            inFolder "if-decoded-damaged" (fun parent ->
                let root = Path.Combine(parent, "images")
                writeVariedFolder root true
                let decoded = Path.Combine(parent, "decoded")
                use reference = ImageFolder.Load(root, rgbOptions)
                (DecodedImageFolder.Load(root, rgbOptions, decoded)).Dispose()
                let testFile = Path.Combine(decoded, "test.f32")
                let bytes = File.ReadAllBytes testFile
                File.WriteAllBytes(testFile, bytes.[.. bytes.Length - 5])
                Expect.stringContains (DecodedImageFolder.Verify decoded |> nonNull) "test.f32" "verify names the short file"
                let lines = Collections.Generic.List<string>()
                use again = DecodedImageFolder.Load(root, rgbOptions, decoded, Action<string>(lines.Add))
                expectSameData again reference "decoded again"
                Expect.exists lines (fun l -> l.Contains "test.f32" && l.Contains "again") "the line names the file and says it decodes again"
                let trainFile = Path.Combine(decoded, "train.f32")
                let train = File.ReadAllBytes trainFile
                train.[17] <- train.[17] ^^^ 1uy
                File.WriteAllBytes(trainFile, train)
                Expect.stringContains (DecodedImageFolder.Verify decoded |> nonNull) "train.f32" "a flipped bit is named")
        }

        test "a decode killed half-way leaves a temporary folder that no load reads; mapping and disposing leaves no tensor alive" {
            inFolder "if-decoded-killed" (fun parent ->
                let root = Path.Combine(parent, "images")
                writeVariedFolder root false
                let decoded = Path.Combine(parent, "decoded")
                // what a killed process leaves: the images half written, no manifest, under the temporary name
                let leftover = decoded + ".tmp-0123"
                Directory.CreateDirectory leftover |> ignore
                File.WriteAllBytes(Path.Combine(leftover, "train.f32"), Array.zeroCreate 40)
                use reference = ImageFolder.Load(root, rgbOptions)
                let once () =
                    use data = DecodedImageFolder.Load(root, rgbOptions, decoded)
                    expectSameData data reference "loaded beside the leftover"
                once ()
                let before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount
                for _ in 1 .. 3 do once ()
                Expect.equal TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount before "live tensors")
        }
    ]

[<Tests>]
let tests = testList "image folder" [ conventionTests; resizeTests; layoutTests; errorTests; decodedTests ]
