/// LIME with a grid of superpixels: on a linear model the weighted least-squares surrogate is exact.
module LimeTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open TestModels

let private logit = ExplainOptions(Output = OutputFunction.Logit)

[<Tests>]
let tests =
    testList "lime" [
        test "LIME with single-pixel superpixels on a linear logit model recovers w (.) x (baseline 0) to 1e-3" {
            use scope = NewDisposeScope()
            let w = Array2D.init 3 6 (fun i j -> float32 (i + 1) * 0.4f - float32 j * 0.3f)
            let model = new LinearNet(w)
            let x = uniform 34 [| 3L; 1L; 1L; 6L |]
            let t = tensor([| 2L; 0L; 1L |])
            use e = Lime(samples = 60, cellHeight = 1, cellWidth = 1).Explain(model, x, t, ExplainOptions(Output = OutputFunction.Logit, BatchSize = 50))
            let expected = tensor(w).index_select(0L, t).view(3, 1, 1, 6) * x
            Expect.isTrue (e.Maps.allclose(expected, 0.0, 1e-3)) $"w (.) x: got {toArray e.Maps}, expected {toArray expected}"
        }

        test "LIME gives every pixel of a superpixel the superpixel's coefficient, on a linear logit model the cell's sum of w (.) x" {
            use scope = NewDisposeScope()
            let w = Array2D.init 1 16 (fun _ j -> float32 (j % 5) * 0.25f - 0.5f)
            let model = new LinearNet(w)
            let x = uniform 35 [| 1L; 1L; 4L; 4L |]
            let contribution = (tensor(w).view(1, 1, 4, 4) * x).view(2, 2, 2, 2)   // [cellRow, row, cellCol, col]
            let cellSums = contribution.sum([| 1L; 3L |])                          // [2, 2]
            let expected = cellSums.view(2, 1, 2, 1).expand(2, 2, 2, 2).reshape(1, 1, 4, 4)
            use e = Lime(samples = 40, cellHeight = 2, cellWidth = 2).Explain(model, x, tensor([| 0L |]), logit)
            Expect.isTrue (e.Maps.allclose(expected, 0.0, 1e-3)) $"cell sums: got {toArray e.Maps}, expected {toArray expected}"
        }

        test "LIME: same seed same map; an input's map does not depend on its batch or chunk size" {
            use scope = NewDisposeScope()
            let model = tinyNet 9 16 6 3
            let x = rand(4, 1, 4, 4)
            let t = tensor([| 0L; 1L; 2L; 1L |])
            let method = Lime(samples = 30, cellHeight = 2, cellWidth = 2)
            let keys = [| 5L; 6L; 7L; 8L |]
            let together = method.Explain(model, x, t, ExplainOptions(BatchSize = 13, InputKeys = keys)).Maps
            let again = method.Explain(model, x, t, ExplainOptions(BatchSize = 13, InputKeys = keys)).Maps
            let alone = method.Explain(model, x.narrow(0, 2, 1), t.narrow(0, 2, 1), ExplainOptions(BatchSize = 1000, InputKeys = [| 7L |])).Maps
            Expect.isTrue (together.allclose(again, 0.0, 0.0)) "deterministic"
            expectCloseOnScale 1e-4 (together.narrow(0, 2, 1)) alone "batch invariance"
        }
    ]
