/// Known answers for the gradient methods: completeness, linear models, invariances, determinism.
module MethodTests

open Expecto
open FsCheck
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Sampling
open TestModels

let private config = { FsCheckConfig.defaultConfig with maxTest = 15 }

let private probabilityOf (model: nn.Module<Tensor, Tensor>) (x: Tensor) (target: int64) =
    use noGrad = no_grad()
    model.forward(x).softmax(1L).[0L, target].item<float32>() |> float

[<Tests>]
let tests =
    testList "methods" [
        testPropertyWithConfig config "Integrated Gradients is complete: sum IG = f(x) - f(0) for random smooth networks" <| fun (seed: int) ->
            use scope = NewDisposeScope()
            let model = tinyNet seed 5 7 3
            use g = new Generator(uint64 (abs seed + 3), CPU)
            let x = randn([| 1L; 1L; 1L; 5L |], generator = g)
            let target = int64 (abs seed % 3)
            use e = Presets.IntegratedGradients(50).Explain(model, x, tensor([| target |]), ExplainOptions())
            let total = e.Maps.sum().item<float32>() |> float
            let expected = probabilityOf model x target - probabilityOf model (zeros_like(x)) target
            Expect.floatClose { absolute = 1e-4; relative = 1e-3 } total expected "completeness"

        test "the Gauss-Legendre rule with n nodes integrates polynomials of degree 2n-1 exactly" {
            for n in [ 1; 2; 5; 20 ] do
                let struct (alphas, weights) = Quadrature.Rule(IntegrationRule.GaussLegendre, n)
                for degree in 0 .. 2 * n - 1 do
                    let integral = Array.fold2 (fun s a w -> s + w * a ** float degree) 0.0 alphas weights
                    Expect.floatClose Accuracy.high integral (1.0 / float (degree + 1)) $"n={n}, degree {degree}"
        }

        test "every quadrature rule's weights sum to one and its nodes lie in [0, 1]" {
            for rule in System.Enum.GetValues<IntegrationRule>() do
                let struct (alphas, weights) = Quadrature.Rule(rule, 16)
                Expect.floatClose Accuracy.high (Array.sum weights) 1.0 $"{rule} weights"
                Expect.all alphas (fun a -> a >= 0.0 && a <= 1.0) $"{rule} nodes"
        }

        test "SmoothGrad of a linear model (logit output) equals its weights" {
            use scope = NewDisposeScope()
            let w = Array2D.init 3 4 (fun i j -> float32 (i + 1) * 0.5f - float32 j * 0.25f)
            let model = new LinearNet(w)
            let x = uniform 36 [| 2L; 1L; 1L; 4L |]
            use e = Presets.SmoothGrad(IsotropicGaussian(0.5), 25).Explain(model, x, tensor([| 2L; 0L |]), ExplainOptions(Output = OutputFunction.Logit))
            let expected = tensor(w).index_select(0L, tensor([| 2L; 0L |])).view(2, 1, 1, 4)
            Expect.isTrue (e.Maps.allclose(expected, 1e-5, 1e-6)) "E[grad] = w"
        }

        test "Gradient x Input of a linear model (logit output) is w * x, and its sum is the logit (completeness)" {
            use scope = NewDisposeScope()
            let w = Array2D.init 2 3 (fun i j -> float32 (i - j))
            let model = new LinearNet(w)
            let x = tensor([| 0.5f; -1.0f; 2.0f |]).view(1, 1, 1, 3)
            use e = Presets.GradientXInput().Explain(model, x, tensor([| 0L |]), ExplainOptions(Output = OutputFunction.Logit))
            Expect.sequenceEqual (toArray e.Maps) [| 0.0; 1.0; -4.0 |] "w (.) x"
        }

        test "VarGrad of a linear model is zero and SmoothGradSQ is w^2 (the gradient does not vary)" {
            use scope = NewDisposeScope()
            let w = Array2D.init 2 3 (fun i j -> float32 (i + j) - 1.0f)
            let model = new LinearNet(w)
            let x = uniform 37 [| 1L; 1L; 1L; 3L |]
            let opts = ExplainOptions(Output = OutputFunction.Logit)
            use v = Presets.VarGrad(IsotropicGaussian(1.0), 10).Explain(model, x, tensor([| 1L |]), opts)
            use s = Presets.SmoothGradSq(IsotropicGaussian(1.0), 10).Explain(model, x, tensor([| 1L |]), opts)
            Expect.all (toArray v.Maps) (fun a -> abs a < 1e-10) "variance 0"
            Expect.sequenceEqual (toArray s.Maps) [| 0.0; 1.0; 4.0 |] "w^2"
        }

        test "a feature the model ignores gets exactly zero attribution from every gradient method" {
            use scope = NewDisposeScope()
            // the last two features have zero weight in every logit
            let w = Array2D.init 3 5 (fun i j -> if j >= 3 then 0.0f else float32 (i * 3 + j) / 7.0f - 0.6f)
            let model = new LinearNet(w)
            let x = uniform 38 [| 3L; 1L; 1L; 5L |]
            let targets = tensor([| 0L; 1L; 2L |])
            let methods : IAttributionMethod list =
                [ Presets.Saliency(); Presets.GradientXInput(); Presets.IntegratedGradients(8); Presets.SmoothGrad(samples = 8)
                  Presets.SmoothGradSq(samples = 8); Presets.VarGrad(samples = 8); Presets.FunctionalInformation(IsotropicGaussian(), 8) ]
            for m in methods do
                use e = m.Explain(model, x, targets, ExplainOptions())
                let ignored = e.Maps.reshape(3, 5).narrow(1, 3, 2)
                Expect.isTrue (ignored.eq(Scalar.op_Implicit 0.0f).all().item<bool>()) $"{m.Describe()}: zero on ignored features"
                Expect.isTrue (e.Maps.reshape(3, 5).narrow(1, 0, 3).ne(Scalar.op_Implicit 0.0f).any().item<bool>()) $"{m.Describe()}: something elsewhere"
        }

        test "same seed gives the same map; another seed another map" {
            use scope = NewDisposeScope()
            let model = tinyNet 3 4 6 2
            let x = rand(2, 1, 1, 4)
            let t = tensor([| 0L; 1L |])
            let run (seed: int64) = Presets.SmoothGrad(samples = 16).Explain(model, x, t, ExplainOptions(Seed = seed)).Maps
            Expect.isTrue ((run 1L).allclose(run 1L, 0.0, 0.0)) "deterministic"
            Expect.isFalse ((run 1L).allclose(run 2L, 0.0, 0.0)) "the seed matters"
        }

        test "an input's map does not depend on its batch or on the chunk size" {
            use scope = NewDisposeScope()
            let model = tinyNet 4 5 6 3
            let x = rand(5, 1, 1, 5)
            let t = tensor([| 0L; 1L; 2L; 0L; 1L |])
            let sg = Presets.FunctionalInformation(IsotropicGaussian(), 30)
            let together = sg.Explain(model, x, t, ExplainOptions(BatchSize = 7, InputKeys = [| 10L; 11L; 12L; 13L; 14L |])).Maps
            let alone = sg.Explain(model, x.narrow(0, 3, 1), t.narrow(0, 3, 1), ExplainOptions(BatchSize = 1000, InputKeys = [| 13L |])).Maps
            expectCloseOnScale 1e-4 (together.narrow(0, 3, 1)) alone "batch invariance"
        }

        test "functional information refuses logit outputs, which can be negative" {
            let model = tinyNet 1 3 4 2
            let fi = Presets.FunctionalInformation(IsotropicGaussian(), 4)
            Expect.throwsT<System.ArgumentException> (fun () -> fi.Explain(model, rand(1, 1, 1, 3), tensor([| 0L |]), ExplainOptions(Output = OutputFunction.Logit)) |> ignore) "logit refused"
        }

        test "the live-tensor count stays flat over many explanations" {
            let model = tinyNet 2 4 6 3
            let x = rand(4, 1, 1, 4)
            let t = tensor([| 0L; 1L; 2L; 0L |])
            let sigma = (randomCovariance 2 4).unsqueeze(0).expand(3, 4, 4)
            let sampler = CovarianceGaussian(ClassCovariance.FromCovariances(sigma, 1L, 1L, 4L), 0.5)
            let explainOnce () =
                use e = Presets.FunctionalInformation(sampler, 20).Explain(model, x, t, ExplainOptions(BatchSize = 16))
                ()
            explainOnce ()
            let before = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            for _ in 1 .. 30 do explainOnce ()
            let after = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            Expect.equal after before "no tensor leaks per explanation"
        }
    ]
