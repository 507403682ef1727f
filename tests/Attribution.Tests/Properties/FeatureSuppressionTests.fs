/// Feature suppression (Sampling Matters, Eq. 11) and the epsilon-sphere: the samplers draw what they claim.
module FeatureSuppressionTests

open Expecto
open FsCheck
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Sampling
open TestModels

let private config = { FsCheckConfig.defaultConfig with maxTest = 8 }

[<Tests>]
let tests =
    testList "samplers/feature suppression" [
        testPropertyWithConfig config "each pixel is kept with probability 1 - p, within 4 standard errors" <| fun (seed: int) ->
            use scope = NewDisposeScope()
            let p = 0.05 + float (abs seed % 90) / 100.0
            use g = new Generator(uint64 (abs seed), CPU)
            let x = rand([| 1L; 3L; 8L; 8L |], generator = g) + 1.0f   // no pixel is 0 before suppression
            let n = 2000
            use set = BernoulliSuppression(p).Draw(x, 0L, n, g)
            let kept = set.Points.select(1, 0L).ne(Scalar.op_Implicit 0.0f).to_type(ScalarType.Float64).mean().item<float>()
            let se = sqrt (p * (1.0 - p) / float (n * 64))
            Expect.isLessThan (abs (kept - (1.0 - p)) / se) 4.0 $"kept fraction {kept} for p = {p}"

        test "the mask is shared across channels, and kept pixels keep their value" {
            use scope = NewDisposeScope()
            use g = new Generator(9UL, CPU)
            let x = rand([| 1L; 3L; 5L; 5L |], generator = g) + 0.5f
            use set = BernoulliSuppression(0.6).Draw(x, 0L, 200, g)
            let dropped = set.Points.eq(Scalar.op_Implicit 0.0f)
            let droppedInChannel0 = dropped.select(1, 0L).unsqueeze(1).expand_as(dropped)
            Expect.isTrue (dropped.eq(droppedInChannel0).all().item<bool>()) "a pixel is dropped in every channel or in none"
            let mask = dropped.logical_not().to_type(ScalarType.Float32)
            Expect.isTrue (set.Points.allclose(x * mask, 0.0, 0.0)) "points are x times a 0/1 mask"
            Expect.isTrue (set.Weights.sum().item<float>() - 1.0 |> abs < 1e-12) "weights sum to one"
        }

        test "p = 0 gives the input itself: feature suppression reduces to absolute saliency" {
            use scope = NewDisposeScope()
            let model = tinyNet 5 6 8 3
            let x = rand(2, 1, 1, 6)
            let t = tensor([| 1L; 2L |])
            use fs = Presets.FeatureSuppression(0.0, 3).Explain(model, x, t, ExplainOptions())
            use sal = Presets.Saliency().Explain(model, x, t, ExplainOptions())
            expectCloseOnScale 1e-5 fs.Maps sal.Maps "E|grad f(x)| = |grad f(x)|"
        }

        test "a linear model's logit gets E|grad| = |w|, and |w| x with timesInput" {
            use scope = NewDisposeScope()
            let w = Array2D.init 2 4 (fun i j -> float32 (i - j) * 0.5f)
            let model = new LinearNet(w)
            let x = tensor([| 0.5f; -1.0f; 2.0f; 0.25f |]).view(1, 1, 1, 4)
            let opts = ExplainOptions(Output = OutputFunction.Logit)
            use plain = Presets.FeatureSuppression(samples = 10).Explain(model, x, tensor([| 1L |]), opts)
            use timesX = Presets.FeatureSuppression(timesInput = true, samples = 10).Explain(model, x, tensor([| 1L |]), opts)
            Expect.sequenceEqual (toArray plain.Maps) [| 0.5; 0.0; 0.5; 1.0 |] "|w|"
            Expect.sequenceEqual (toArray timesX.Maps) [| 0.25; 0.0; 1.0; 0.25 |] "|w| x"
        }

        test "a model that ignores half its input gets exactly zero attribution there" {
            use scope = NewDisposeScope()
            let w = Array2D.init 3 8 (fun i j -> if j >= 4 then 0.0f else float32 (i * 4 + j) / 9.0f - 0.5f)
            let model = new LinearNet(w)
            let x = uniform 48 [| 3L; 1L; 1L; 8L |] + 0.1f
            let targets = tensor([| 0L; 1L; 2L |])
            for timesInput in [ false; true ] do
                use e = Presets.FeatureSuppression(0.7, 16, timesInput).Explain(model, x, targets, ExplainOptions())
                let maps = e.Maps.reshape(3, 8)
                Expect.isTrue (maps.narrow(1, 4, 4).eq(Scalar.op_Implicit 0.0f).all().item<bool>()) $"timesInput={timesInput}: zero on the ignored half"
                Expect.isTrue (maps.narrow(1, 0, 4).gt(Scalar.op_Implicit 0.0f).any().item<bool>()) $"timesInput={timesInput}: positive on the used half"
                Expect.isTrue (maps.ge(Scalar.op_Implicit 0.0f).all().item<bool>()) "non-negative (mean absolute gradient of positive inputs)"
        }

        test "p must lie in [0, 1)" {
            Expect.throwsT<System.ArgumentOutOfRangeException> (fun () -> BernoulliSuppression(1.0) |> ignore) "p = 1 drops everything"
            Expect.throwsT<System.ArgumentOutOfRangeException> (fun () -> BernoulliSuppression(-0.1) |> ignore) "negative p"
        }
    ]

[<Tests>]
let sphereTests =
    testList "samplers/epsilon sphere" [
        // float64 inputs: in float32, rounding x + delta alone moves |z - x| by about sqrt(D) ulp(|x|), 1e-4 of a small epsilon
        testPropertyWithConfig config "every point lies at distance epsilon from x (relative 1e-9, float64 inputs)" <| fun (seed: int) ->
            use scope = NewDisposeScope()
            let epsilon = 0.01 + float (abs seed % 50) / 10.0
            use g = new Generator(uint64 (abs seed), CPU)
            let x = randn([| 1L; 3L; 4L; 4L |], dtype = ScalarType.Float64, generator = g)
            use set = EpsilonSphere(epsilon).Draw(x, 0L, 500, g)
            let distances = (set.Points.to_type(ScalarType.Float64) - x.to_type(ScalarType.Float64)).flatten(1).norm(1)
            let worst = ((distances - epsilon).abs() / epsilon).max().item<float>()
            Expect.isLessThan worst 1e-9 $"largest relative deviation from epsilon = {epsilon}"

        test "the mean direction is 0 within 5 standard errors (uniform on the sphere)" {
            use scope = NewDisposeScope()
            use g = new Generator(21UL, CPU)
            let d, n = 12, 20000
            let x = rand([| 1L; 1L; 3L; 4L |], generator = g)
            use set = EpsilonSphere(0.5).Draw(x, 0L, n, g)
            let directions = (set.Points - x).reshape(int64 n, int64 d).to_type(ScalarType.Float64) / 0.5
            // each component of a uniform unit vector has mean 0 and variance 1/d
            let se = sqrt (1.0 / float d / float n)
            let worst = (directions.mean([| 0L |]).abs() / se).max().item<float>()
            Expect.isLessThan worst 5.0 "mean direction"
            let second = directions.square().mean([| 0L |])
            Expect.isTrue (second.allclose(full(int64 d, 1.0 / float d, dtype = ScalarType.Float64), 0.05, 0.0)) "E[u_i^2] = 1/d (isotropy)"
        }
    ]
