/// Occlusion (Captum semantics) on linear models, where every window's effect is a sum of w (.) x.
module OcclusionTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open TestModels

let private logit = ExplainOptions(Output = OutputFunction.Logit)

/// The reference: for each pixel the mean, over the windows covering it, of the window's sum of w (.) x (0 if uncovered).
let private slowOcclusion (contribution: float[,]) wh ww sh sw =
    let h, w = Array2D.length1 contribution, Array2D.length2 contribution
    let total = Array2D.zeroCreate h w
    let times = Array2D.zeroCreate h w
    for r in 0 .. sh .. h - wh do
        for c in 0 .. sw .. w - ww do
            let s = Seq.sum (seq { for i in r .. r + wh - 1 do for j in c .. c + ww - 1 -> contribution.[i, j] })
            for i in r .. r + wh - 1 do
                for j in c .. c + ww - 1 do
                    total.[i, j] <- total.[i, j] + s
                    times.[i, j] <- times.[i, j] + 1.0
    Array.init (h * w) (fun k -> let i, j = k / w, k % w in if times.[i, j] = 0.0 then 0.0 else total.[i, j] / times.[i, j])

[<Tests>]
let tests =
    testList "occlusion" [
        test "Occlusion with 1x1 windows on a linear logit model is w (.) x exactly" {
            use scope = NewDisposeScope()
            let w = Array2D.init 2 5 (fun i j -> float32 (i - j) * 0.5f + 0.25f)
            let model = new LinearNet(w)
            let x = uniform 41 [| 2L; 1L; 1L; 5L |]
            let t = tensor([| 1L; 0L |])
            use e = Occlusion(1, 1, 1, 1).Explain(model, x, t, logit)
            let expected = tensor(w).index_select(0L, t).view(2, 1, 1, 5) * x
            expectCloseOnScale 1e-5 e.Maps expected "w (.) x"
        }

        test "Occlusion on a linear logit model gives each pixel the mean of the window sums of w (.) x over the windows covering it (0 where none does)" {
            use scope = NewDisposeScope()
            let w = Array2D.init 1 20 (fun _ j -> float32 (j % 7) * 0.3f - 0.8f)
            let model = new LinearNet(w)
            let x = uniform 42 [| 1L; 1L; 4L; 5L |]
            let xs = toArray x
            let contribution = Array2D.init 4 5 (fun i j -> float w.[0, i * 5 + j] * xs.[i * 5 + j])
            for (wh, ww, sh, sw) in [ (2, 3, 1, 2); (2, 2, 2, 2); (3, 3, 1, 1) ] do
                use e = Occlusion(wh, ww, sh, sw).Explain(model, x, tensor([| 0L |]), logit)
                let expected = slowOcclusion contribution wh ww sh sw
                // float32 differences of logits against a float64 reference: equal to rounding at the maps' scale (rounding
                // both to 4 decimals fails whenever a value sits near a rounding boundary)
                expectCloseOnScale 1e-5 e.Maps (tensor(expected).reshape(e.Maps.shape)) $"window {wh}x{ww}, stride {sh}x{sw}"
        }

        test "Occlusion: every channel of a pixel gets the same value, and chunking does not change the map" {
            use scope = NewDisposeScope()
            let model = tinyNet 7 12 5 3
            let x = rand(3, 2, 2, 3)
            let t = tensor([| 0L; 1L; 2L |])
            let method = Occlusion(1, 2, 1, 1)
            use a = method.Explain(model, x, t, ExplainOptions(BatchSize = 4))
            use b = method.Explain(model, x, t, ExplainOptions(BatchSize = 1000))
            expectCloseOnScale 1e-5 a.Maps b.Maps "chunk invariance"
            Expect.isTrue (a.Maps.narrow(1, 0, 1).allclose(a.Maps.narrow(1, 1, 1), 0.0, 0.0)) "all channels occluded together"
        }
    ]
