/// The Monte-Carlo standard error a sampling method reports from its two halves of samples, against the value the
/// mathematics gives where it is known.
module MonteCarloErrorTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Sampling

/// Logits [|x|^2 / 2, 0]: the gradient of the first is x itself, so under z = x + s eps the sampled gradient is
/// x + s eps and SmoothGrad's map (its mean over S samples) has standard error s / sqrt(S) in every feature.
type HalfSquaredNorm() =
    inherit nn.Module<Tensor, Tensor>("half_squared_norm")
    override _.forward(x) =
        let value = x.flatten(1L).square().sum([| 1L |]) * 0.5
        stack([| value; zeros_like(value) |], 1L)

[<Tests>]
let tests =
    testList "samplers/monte-carlo error" [
        test "SmoothGrad's reported standard error is s / sqrt(S) where the gradient is x + s eps" {
            use scope = NewDisposeScope()
            use model = new HalfSquaredNorm()
            let stdev, samples = 0.3, 64
            use g = new Generator(5UL, CPU)
            // 8 inputs of 1024 features: each input's estimate averages 1024 squared half-differences, whose relative
            // spread is sqrt(2 / 1024) = 4.4%; the 8 inputs' mean has 1.6%.
            let x = randn([| 8L; 1L; 32L; 32L |], generator = g)
            let options = ExplainOptions(OutputFunction.Logit, 256, 11L)
            use e = Presets.SmoothGrad(IsotropicGaussian(stdev), samples).Explain(model, x, zeros(8L, dtype = ScalarType.Int64), options)
            let truth = stdev / sqrt (float samples)
            let reported = e.Diagnostics.["mc_standard_error"].``to``(ScalarType.Float64).data<float>().ToArray()
            for r in reported do Expect.floatClose { absolute = 0.0; relative = 0.18 } r truth "each input's estimate within 4 standard deviations of its spread"
            Expect.floatClose { absolute = 0.0; relative = 0.07 } (Array.average reported) truth "the mean over inputs"
            // relative error: over the map's root mean square (the map estimates x, whose RMS is about 1)
            let rms = e.Maps.``to``(ScalarType.Float64).reshape(8L, -1L).square().mean([| 1L |]).sqrt()
            let relative = e.Diagnostics.["mc_relative_error"].``to``(ScalarType.Float64)
            Expect.isTrue (relative.allclose(e.Diagnostics.["mc_standard_error"].``to``(ScalarType.Float64) / rms, 1e-9, 0.0)) "relative = standard error / RMS of the map"
        }

        test "doubling the samples divides the reported standard error by about sqrt 2" {
            use scope = NewDisposeScope()
            use model = new HalfSquaredNorm()
            use g = new Generator(9UL, CPU)
            let x = randn([| 4L; 1L; 32L; 32L |], generator = g)
            let options = ExplainOptions(OutputFunction.Logit, 256, 3L)
            let errorAt (samples: int) =
                use e = Presets.SmoothGrad(IsotropicGaussian(0.5), samples).Explain(model, x, zeros(4L, dtype = ScalarType.Int64), options)
                e.Diagnostics.["mc_standard_error"].mean().item<float>()
            let ratio = errorAt 32 / errorAt 64
            Expect.floatClose { absolute = 0.0; relative = 0.08 } ratio (sqrt 2.0) "SE(32) / SE(64)"
        }
    ]
