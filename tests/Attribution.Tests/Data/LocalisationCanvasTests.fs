/// The localisation canvas: items where their boxes say, clutter outside, seeded.
module LocalisationCanvasTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Data

/// Five synthetic 28x28 items: item k is a filled rectangle of 0.8 at rows 3+k..14+2k, columns 4..20-k.
let private items () =
    let images = zeros(5L, 1L, 28L, 28L)
    for k in 0L .. 4L do
        images.[k, 0L].narrow(0, 3L + k, 12L + k).narrow(1, 4L, 17L - k).fill_(Scalar.op_Implicit 0.8f) |> ignore
    new ImageDataset(images, arange(5L, dtype = ScalarType.Int64), [ "a"; "b"; "c"; "d"; "e" ])

[<Tests>]
let tests =
    testList "localisation canvas" [
        test "the canvas holds the item at its placement, the box is the item's tight box, the label is the item's" {
            use scope = NewDisposeScope()
            use source = items ()
            use set = LocalisationCanvas.Build(source, 20, 4L, CanvasOptions(NoiseStd = 0.0))
            Expect.sequenceEqual set.Images.Images.shape [| 20L; 1L; 56L; 56L |] "56x56 canvases"
            let mutable clutter = false
            for i in 0 .. 19 do
                let p = set.Placements.[i]
                let k = set.SourceIndices.[i]
                let canvas = set.Images.Images.[int64 i, 0L]
                let square = canvas.narrow(0, int64 p.Top, 28L).narrow(1, int64 p.Left, 28L)
                Expect.isTrue (square.allclose(source.Images.[k, 0L], 0.0, 0.0)) $"item {k} at its placement"
                Expect.equal (set.Images.Labels.[int64 i].item<int64>()) k "label"
                Expect.equal set.Boxes.[i] (Box(p.Top + 3 + int k, p.Left + 4, 12 + int k, 17 - int k)) "tight box"
                if canvas.sum().item<float32>() > square.sum().item<float32>() + 1e-3f then clutter <- true
            Expect.isTrue clutter "fragments of other items outside the item's square"
        }

        test "the same seed gives the same canvases, noise included" {
            use scope = NewDisposeScope()
            use source = items ()
            use a = LocalisationCanvas.Build(source, 6, 9L)
            use b = LocalisationCanvas.Build(source, 6, 9L)
            Expect.isTrue (a.Images.Images.allclose(b.Images.Images, 0.0, 0.0)) "identical"
            Expect.sequenceEqual a.Boxes b.Boxes "boxes"
        }
    ]
