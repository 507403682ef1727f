/// NeFLAG (Li et al. 2023, Algorithm 1) on models where the walks can be followed by hand.
module NegativeFluxAggregationTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open TestModels

/// Logits [s |x - c|^2, 0] on inputs [B, 1, 1, d]: a strict local minimum (s = 1) or maximum (s = -1) of logit 0 at c.
type QuadraticNet(c: float32[], s: float32) =
    inherit nn.Module<Tensor, Tensor>("quadratic_net")
    let centre = tensor(c)
    override _.forward(x) =
        use scope = NewDisposeScope()
        let q = (x.flatten(1) - centre.``to``(x.device)).square().sum(1L) * s
        stack([| q; zeros_like(q) |], 1L).MoveToOuterDisposeScope()

let private logit = ExplainOptions(Output = OutputFunction.Logit)

[<Tests>]
let tests =
    testList "neflag" [
        test "NeFLAG on a 1-D linear logit w x is exactly n eps |w| whatever x (a start below f(x) stops at once; one above steps to x - eps sign(w))" {
            use scope = NewDisposeScope()
            let model = new LinearNet(array2D [ [ 2.0f ]; [ -3.0f ] ])
            let x = tensor([| 0.3f; -1.2f; 0.7f; 2.5f |]).view(4, 1, 1, 1)
            let t = tensor([| 0L; 1L; 1L; 0L |])
            use e = NegativeFluxAggregation(samples = 20, epsilon = 0.1).Explain(model, x, t, logit)
            Expect.sequenceEqual (toArray e.Maps |> Array.map (fun v -> System.Math.Round(v, 4))) [| 4.0; 6.0; 6.0; 4.0 |] "20 * 0.1 * |w_t|"
            Expect.all (toArray e.Diagnostics.["mean_steps"]) (fun s -> s >= 1.0 && s <= 2.0) "one or two steps per walk"
            Expect.all (toArray e.Diagnostics.["negative_flux_fraction"]) (fun s -> s = 1.0) "every walk ends on a negative flux"
        }

        test "NeFLAG on a linear logit model: walks take 1 or 2 steps, the map sums to sum_walks (f(x) - f(x~)) > 0, does not depend on x, and is 0 where w is 0" {
            use scope = NewDisposeScope()
            let w = Array2D.init 2 6 (fun i j -> if j = 5 then 0.0f else float32 (i + 1) * 0.3f - float32 j * 0.2f)
            let model = new LinearNet(w)
            let x = uniform 39 [| 3L; 1L; 1L; 6L |]
            let t = tensor([| 0L; 1L; 0L |])
            let method = NegativeFluxAggregation(samples = 10, epsilon = 0.1)
            use e = method.Explain(model, x, t, logit)
            use shifted = method.Explain(model, x + 5.0, t, logit)
            let steps = toArray e.Diagnostics.["mean_steps"]
            Expect.all steps (fun s -> s >= 1.0 && s <= 2.0) "linear: at most one sign step"
            Expect.all (toArray (e.Maps.flatten(1).sum(1L))) (fun s -> s > 0.0) "Taylor is exact on a linear f: each walk adds f(x) - f(x~) > 0"
            Expect.isTrue (e.Maps.allclose(shifted.Maps, 1e-4, 1e-5)) "F is constant and x - x~ depends only on the random start"
            Expect.all (toArray (e.Maps.reshape(3, 6).narrow(1, 5, 1))) (fun v -> v = 0.0) "ignored feature"
        }

        test "NeFLAG at a strict local maximum stops every walk at its random start, and each walk adds 2 eps^2 (f = -|x - c|^2, x = c)" {
            use scope = NewDisposeScope()
            let c = [| 0.2f; -0.4f; 0.9f; 0.1f; 0.5f |]
            let model = new QuadraticNet(c, -1.0f)
            let x = tensor(c).view(1, 1, 1, 5)
            use e = NegativeFluxAggregation(samples = 8, epsilon = 0.1).Explain(model, x, tensor([| 0L |]), logit)
            Expect.floatClose { absolute = 1e-5; relative = 1e-4 } (e.Maps.sum().item<float32>() |> float) (8.0 * 2.0 * 0.01) "n 2 eps^2"
            Expect.all (toArray e.Maps) (fun v -> v >= 0.0) "2 (x~ - c)^2 per feature"
            Expect.equal (toArray e.Diagnostics.["mean_steps"]) [| 1.0 |] "one step"
        }

        test "NeFLAG at a strict local minimum never finds a negative flux: every walk runs all m steps" {
            use scope = NewDisposeScope()
            let c = [| 0.2f; -0.4f; 0.9f |]
            let model = new QuadraticNet(c, 1.0f)
            let x = tensor(c).view(1, 1, 1, 3)
            use e = NegativeFluxAggregation(samples = 3, epsilon = 0.1, maxSteps = 7).Explain(model, x, tensor([| 0L |]), logit)
            Expect.equal (toArray e.Diagnostics.["mean_steps"]) [| 7.0 |] "m steps"
            Expect.equal (toArray e.Diagnostics.["negative_flux_fraction"]) [| 0.0 |] "no negative flux"
        }

        test "NeFLAG: same seed same map, another seed another map; an input's map does not depend on its batch or chunk size" {
            use scope = NewDisposeScope()
            let model = tinyNet 5 4 6 3
            let x = rand(5, 1, 1, 4)
            let t = tensor([| 0L; 1L; 2L; 0L; 1L |])
            let method = NegativeFluxAggregation(samples = 6)
            let run seed batch = method.Explain(model, x, t, ExplainOptions(Seed = seed, BatchSize = batch, InputKeys = [| 10L; 11L; 12L; 13L; 14L |])).Maps
            Expect.isTrue ((run 1L 7).allclose(run 1L 7, 0.0, 0.0)) "deterministic"
            Expect.isFalse ((run 1L 7).allclose(run 2L 7, 0.0, 0.0)) "the seed matters"
            let alone = method.Explain(model, x.narrow(0, 3, 1), t.narrow(0, 3, 1), ExplainOptions(Seed = 1L, BatchSize = 1000, InputKeys = [| 13L |])).Maps
            expectCloseOnScale 1e-4 ((run 1L 7).narrow(0, 3, 1)) alone "batch invariance"
        }

        test "NeFLAG gives exactly zero to features the model ignores (probability output)" {
            use scope = NewDisposeScope()
            let w = Array2D.init 3 5 (fun i j -> if j >= 3 then 0.0f else float32 (i * 3 + j) / 7.0f - 0.6f)
            let model = new LinearNet(w)
            use e = NegativeFluxAggregation(samples = 5).Explain(model, uniform 40 [| 3L; 1L; 1L; 5L |], tensor([| 0L; 1L; 2L |]), ExplainOptions())
            Expect.isTrue (e.Maps.reshape(3, 5).narrow(1, 3, 2).eq(Scalar.op_Implicit 0.0f).all().item<bool>()) "zero on ignored features"
            Expect.isTrue (e.Maps.reshape(3, 5).narrow(1, 0, 3).ne(Scalar.op_Implicit 0.0f).any().item<bool>()) "something elsewhere"
        }
    ]
