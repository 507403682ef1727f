/// Guided IG (Kapishnikov et al. 2021, the PAIR-code guided_ig algorithm) on models with known path integrals.
module GuidedIntegratedGradientsTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open TestModels

let private logit = ExplainOptions(Output = OutputFunction.Logit)

[<Tests>]
let tests =
    testList "guided_ig" [
        test "Guided IG is a path method: on a random tanh network the map sums to f(x) - f(0) within 1e-3 (200 steps, probability output; measured gaps 3e-5 to 5e-4)" {
            use scope = NewDisposeScope()
            let model = tinyNet 3 8 16 3
            let x = rand(4, 1, 1, 8) * 2.0
            let t = tensor([| 0L; 1L; 2L; 1L |])
            use e = GuidedIntegratedGradients().Explain(model, x, t, ExplainOptions())
            let fx = toArray (PerturbationEngine.Values(model, x, t, ExplainOptions()))
            let f0 = toArray (PerturbationEngine.Values(model, zeros_like(x), t, ExplainOptions()))
            let sums = toArray (e.Maps.flatten(1).sum(1L))
            for i in 0 .. 3 do
                Expect.floatClose { absolute = 1e-3; relative = 0.0 } sums.[i] (fx.[i] - f0.[i]) $"completeness of input {i}"
        }

        test "Guided IG on a linear logit model is w_t (.) x feature by feature, whatever the path (and chunking does not matter)" {
            use scope = NewDisposeScope()
            let w = Array2D.init 3 6 (fun i j -> float32 (i + 1) * 0.4f - float32 j * 0.3f)
            let model = new LinearNet(w)
            let x = normal 32 [| 5L; 1L; 1L; 6L |]
            let t = tensor([| 0L; 1L; 2L; 0L; 2L |])
            let expected = x.reshape(5, 6) * tensor(w).index_select(0, t)
            for batch in [ 256; 2 ] do
                use e = GuidedIntegratedGradients(steps = 50).Explain(model, x, t, ExplainOptions(Output = OutputFunction.Logit, BatchSize = batch))
                Expect.isTrue (e.Maps.reshape(5, 6).allclose(expected, 1e-5, 1e-5)) $"w (.) x, batch size {batch}"
        }

        test "Guided IG with max_dist 0 is IG with a left Riemann sum on the straight line: sum_t grad f((t - 1)/N x) (.) x / N" {
            use scope = NewDisposeScope()
            let model = tinyNet 4 5 7 2
            let x = rand(2, 1, 1, 5)
            let t = tensor([| 0L; 1L |])
            let n = 16
            use e = GuidedIntegratedGradients(steps = n, maxDist = 0.0).Explain(model, x, t, ExplainOptions())
            let mutable reference = zeros_like(x, dtype = ScalarType.Float64)
            for s in 0 .. n - 1 do
                let struct (_, g, _) = GradientEngine.Evaluate(model, x * (float s / float n), t, OutputFunction.Probability)
                reference <- reference + (g * x / float n).``to``(ScalarType.Float64)
            expectCloseOnScale 1e-5 e.Maps reference "left Riemann IG"
        }

        test "Guided IG leaves the straight line when allowed: max_dist 1 gives another map than max_dist 0, with the same sum up to the Riemann error" {
            use scope = NewDisposeScope()
            let model = tinyNet 6 6 10 3
            let x = rand(3, 1, 1, 6) * 2.0
            let t = tensor([| 0L; 1L; 2L |])
            use straight = GuidedIntegratedGradients(steps = 100, maxDist = 0.0).Explain(model, x, t, ExplainOptions())
            use guided = GuidedIntegratedGradients(steps = 100, fraction = 0.1, maxDist = 1.0).Explain(model, x, t, ExplainOptions())
            Expect.isFalse (straight.Maps.allclose(guided.Maps, 1e-3, 1e-4)) "the path matters"
            Expect.isTrue (straight.Maps.flatten(1).sum(1L).allclose(guided.Maps.flatten(1).sum(1L), 0.0, 5e-3)) "both sum to about f(x) - f(0)"
        }

        test "Guided IG gives exactly zero to features the model ignores (probability output)" {
            use scope = NewDisposeScope()
            let w = Array2D.init 3 5 (fun i j -> if j >= 3 then 0.0f else float32 (i * 3 + j) / 7.0f - 0.6f)
            let model = new LinearNet(w)
            use e = GuidedIntegratedGradients(steps = 40).Explain(model, uniform 33 [| 3L; 1L; 1L; 5L |], tensor([| 0L; 1L; 2L |]), ExplainOptions())
            Expect.isTrue (e.Maps.reshape(3, 5).narrow(1, 3, 2).eq(Scalar.op_Implicit 0.0f).all().item<bool>()) "zero on ignored features"
            Expect.isTrue (e.Maps.reshape(3, 5).narrow(1, 0, 3).ne(Scalar.op_Implicit 0.0f).any().item<bool>()) "something elsewhere"
        }

        test "Guided IG is deterministic, keeps the input shape, and an input's map does not depend on its batch" {
            use scope = NewDisposeScope()
            let model = tinyNet 5 6 8 3
            let x = rand(4, 1, 2, 3)
            let t = tensor([| 2L; 0L; 1L; 1L |])
            let method = GuidedIntegratedGradients(steps = 30)
            let run batch = method.Explain(model, x, t, ExplainOptions(BatchSize = batch)).Maps
            Expect.sequenceEqual (run 3).shape x.shape "shape"
            Expect.isTrue ((run 3).allclose(run 3, 0.0, 0.0)) "bit-identical"
            let alone = method.Explain(model, x.narrow(0, 2, 1), t.narrow(0, 2, 1), ExplainOptions()).Maps
            expectCloseOnScale 1e-5 ((run 4).narrow(0, 2, 1)) alone "batch invariance"
        }

        test "the live-tensor count stays flat over many Guided IG explanations" {
            let model = tinyNet 2 6 5 4
            let x = rand(3, 1, 2, 3)
            let t = tensor([| 0L; 1L; 3L |])
            let explain () =
                use e = GuidedIntegratedGradients(steps = 8).Explain(model, x, t, ExplainOptions(BatchSize = 4))
                ()
            explain ()
            let before = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            for _ in 1 .. 5 do explain ()
            Expect.equal DisposeScopeManager.Statistics.ThreadTotalLiveCount before "no tensor leaks per explanation"
        }
    ]
