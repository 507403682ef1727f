/// Expected Gradients (Erion et al. 2021): completeness in expectation, and IG as its single-baseline case.
module ExpectedGradientsTests

open Expecto
open FsCheck
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Sampling
open TestModels

let private config = { FsCheckConfig.defaultConfig with maxTest = 5 }

let private probabilities (model: nn.Module<Tensor, Tensor>) (x: Tensor) (target: int64) =
    use noGrad = no_grad()
    model.forward(x).softmax(1L).select(1, target).to_type(ScalarType.Float64)

let private meanAndStandardError (xs: float list) =
    let n = float xs.Length
    let m = List.average xs
    m, sqrt ((xs |> List.sumBy (fun x -> (x - m) ** 2.0)) / (n - 1.0) / n)

[<Tests>]
let tests =
    testList "samplers/expected gradients" [
        testPropertyWithConfig config "sum EG = f(x) - E_b[f(b)] within 4 standard errors over repetitions, for random smooth networks" <| fun (seed: int) ->
            use scope = NewDisposeScope()
            let d = 5
            let model = tinyNet seed d 7 3
            use g = new Generator(uint64 (abs seed + 1), CPU)
            let x = randn([| 1L; 1L; 1L; int64 d |], generator = g)
            let references = randn([| 8L; 1L; 1L; int64 d |], generator = g)
            let target = int64 (abs seed % 3)
            let eg = Presets.ExpectedGradients(references, 400)
            let totals =
                [ for r in 1 .. 10 ->
                    use e = eg.Explain(model, x, tensor([| target |]), ExplainOptions(Seed = int64 r))
                    e.Maps.to_type(ScalarType.Float64).sum().item<float>() ]
            let total, se = meanAndStandardError totals
            let expected = (probabilities model x target).item<float>() - (probabilities model references target).mean().item<float>()
            Expect.isLessThan (abs (total - expected)) (4.0 * se + 1e-6) $"sum {total} (se {se}) vs f(x) - E f(b) = {expected}"

        test "with one constant reference and many samples EG approaches IG (per feature, within 5 standard errors)" {
            use scope = NewDisposeScope()
            let d = 5
            let model = tinyNet 17 d 7 3
            use g = new Generator(4UL, CPU)
            let x = randn([| 1L; 1L; 1L; int64 d |], generator = g)
            let target = tensor([| 2L |])
            use ig = Presets.IntegratedGradients(50, baseline = 0.25).Explain(model, x, target, ExplainOptions())
            let eg = Presets.ExpectedGradients(ones(1, 1, 1, d) * 0.25f, 2000)
            let maps = [ for r in 1 .. 6 -> (eg.Explain(model, x, target, ExplainOptions(Seed = int64 r))).Maps.to_type(ScalarType.Float64) ]
            let stacked = stack(maps, 0L)
            let mean = stacked.mean([| 0L |])
            let se = stacked.std([| 0L |]) / sqrt 6.0
            let z = ((mean - ig.Maps.to_type(ScalarType.Float64)).abs() / (se + 1e-9)).max().item<float>()
            Expect.isLessThan z 5.0 "largest per-feature deviation in standard errors"
        }

        test "the per-point multiplier survives chunking: the map does not depend on the batch size" {
            use scope = NewDisposeScope()
            let model = tinyNet 8 4 6 2
            let x = rand(3, 1, 1, 4)
            let t = tensor([| 0L; 1L; 0L |])
            let eg = Presets.ExpectedGradients(rand(5, 1, 1, 4), 20)
            use small = eg.Explain(model, x, t, ExplainOptions(BatchSize = 7))
            use large = eg.Explain(model, x, t, ExplainOptions(BatchSize = 1000))
            expectCloseOnScale 1e-5 small.Maps large.Maps "batch invariance"
        }

        test "a linear model's logit: EG = w (.) (x - E b) within 5 standard errors" {
            use scope = NewDisposeScope()
            let w = Array2D.init 2 3 (fun i j -> float32 (i + j) - 1.0f)
            let model = new LinearNet(w)
            let x = tensor([| 1.0f; 2.0f; 3.0f |]).view(1, 1, 1, 3)
            let references = tensor([| 0.0f; 0.0f; 0.0f; 2.0f; 2.0f; 2.0f |]).view(2, 1, 1, 3)   // E b = 1
            use e = Presets.ExpectedGradients(references, 4000).Explain(model, x, tensor([| 1L |]), ExplainOptions(Output = OutputFunction.Logit))
            // w = (0, 1, 2), x - E b = (0, 1, 2); b is 0 or 2, so each term is w_i (x_i - 1 +- 1): sd of the mean w_i / sqrt 4000
            let tolerances = [| 1e-9; 5.0 * 1.0 / sqrt 4000.0; 5.0 * 2.0 / sqrt 4000.0 |]
            Array.iteri2 (fun i a e -> Expect.isLessThan (abs (a - e)) tolerances.[i] $"feature {i}") (toArray e.Maps) [| 0.0; 1.0; 4.0 |]
        }
    ]
