/// Effective Heat Ratio on maps whose answer is known.
module EffectiveHeatRatioTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Data
open Attribution.Metrics

let private indicator (b: Box) =
    let m = zeros(1L, 1L, 28L, 28L)
    m.[0L, 0L].narrow(0, int64 b.Top, int64 b.Height).narrow(1, int64 b.Left, int64 b.Width).fill_(Scalar.op_Implicit 1.0f) |> ignore
    m

[<Tests>]
let tests =
    testList "effective heat ratio" [
        test "the box indicator scores 1 (the maximum), a map outside the box 0, half of the heat inside 0.5" {
            use scope = NewDisposeScope()
            let box = Box(5, 5, 8, 8)
            let outside = Box(15, 15, 8, 8)
            let metric = EffectiveHeatRatio()
            let maps = cat([| indicator box; indicator outside; indicator box + indicator outside |], 0L)
            let r = metric.Evaluate(maps, [ box; box; box ])
            Expect.floatClose Accuracy.high r.Ehr.[0] 1.0 "indicator"
            Expect.floatClose Accuracy.high r.Ehr.[1] 0.0 "outside"
            Expect.floatClose Accuracy.high r.Ehr.[2] 0.5 "half inside: 64 hot pixels of 128 at every threshold"
            Expect.equal r.Excluded 0 "none excluded"
            Expect.sequenceEqual r.Quantiles [| for i in 0 .. 10 -> float i / 10.0 |] "q = 0, 0.1, ..., 1"
        }

        test "a signed map whose every non-zero value is in the box scores 1: heat is magnitude, zero attribution is no heat" {
            use scope = NewDisposeScope()
            let box = Box(5, 5, 8, 8)
            // +1 on the box's upper half, -1 on its lower half, 0 elsewhere: all the attribution is in the box
            let signed = indicator (Box(5, 5, 4, 8)) - indicator (Box(9, 5, 4, 8))
            let r = EffectiveHeatRatio().Evaluate(signed, [ box ])
            Expect.floatClose Accuracy.high r.Ehr.[0] 1.0 "as the box indicator"
            // and a signed map whose attribution is all outside the box scores 0, whatever its sign
            let outside = indicator (Box(15, 15, 4, 8)) - indicator (Box(19, 15, 4, 8))
            Expect.floatClose Accuracy.high (EffectiveHeatRatio().Evaluate(outside, [ box ]).Ehr.[0]) 0.0 "none in the box"
        }

        test "a mask is a region of any shape: heat uniform over an L's bounding box scores the L's share of it" {
            use scope = NewDisposeScope()
            let bounding = Box(4, 4, 10, 10)
            // an L: the bounding box's left 3 columns and bottom 3 rows (10*3 + 7*3 = 51 of 100 pixels)
            let inL (r: int) (c: int) = bounding.Contains(r, c) && (c < 7 || r >= 11)
            let mask = PixelMask(Array.init (28 * 28) (fun p -> inL (p / 28) (p % 28)), 28, 28)
            Expect.equal mask.Area 51 "the L's pixels"
            let r = EffectiveHeatRatio().Evaluate(indicator bounding, [ mask ])
            Expect.floatClose Accuracy.high r.Ehr.[0] 0.51 "51 of the 100 equally hot pixels are in the L, at every threshold"
            Expect.floatClose Accuracy.high (EffectiveHeatRatio().Evaluate(indicator bounding, [ bounding ])).Ehr.[0] 1.0 "the box itself: all of them"
        }

        test "inputs whose box covers more than a third of the image are excluded and counted" {
            use scope = NewDisposeScope()
            let big = Box(0, 0, 20, 20)      // 400 of 784 pixels
            let r = EffectiveHeatRatio().Evaluate(cat([| indicator big; indicator (Box(1, 1, 5, 5)) |], 0L), [ big; Box(1, 1, 5, 5) ])
            Expect.equal r.Excluded 1 "one excluded"
            Expect.isTrue (System.Double.IsNaN r.Ehr.[0]) "NaN for the excluded one"
            Expect.floatClose Accuracy.high r.Mean 1.0 "mean over the included one"
        }
    ]
