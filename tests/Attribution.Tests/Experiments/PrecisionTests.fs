/// explain.precision: a bfloat16 copy of the network behind float32 casts (ReducedPrecisionModel) gives maps of the
/// reduced arithmetic, within a stated distance of fp32's; precision is part of the maps' cache keys; methods that
/// read the network's inside are refused with bf16.
module PrecisionTests

open System
open System.IO
open Expecto
open TorchSharp
open Experiments

let private device, withCache, planOf = TestProcesses.cpu, TestProcesses.withCache, TestProcesses.planOf

/// f(x) = w x, one weight, no bias, in float32 and behind a bfloat16 copy; the gradient of f at x = 1 is w.
let private linearGradient (w: float32) (reduced: bool) =
    use scope = torch.NewDisposeScope()
    let layer = torch.nn.Linear(1L, 1L, hasBias = false)
    use _ = torch.no_grad()
    layer.weight.copy_(torch.tensor([| w |]).view(1L, 1L)) |> ignore
    let model : torch.nn.Module<torch.Tensor, torch.Tensor> =
        if reduced then
            layer.``to``(torch.ScalarType.BFloat16) |> ignore
            new Attribution.Models.ReducedPrecisionModel(layer, torch.ScalarType.BFloat16)
        else layer
    use enabled = torch.enable_grad()
    let x = torch.ones(1L, 1L).requires_grad_(true)
    let y = model.call x
    let gradient = torch.autograd.grad([| y.sum() |], [| x |]).[0]
    y.dtype, gradient.dtype, gradient.item<float32>()

/// 64 test images explained by gradient methods, in the given precision.
let private spec (output: string) (precision: Precision) : Spec =
    let sampling samples = { Samples = samples; Sampler = IsotropicGaussian 0.1 }
    { Name = "precision"
      Seed = 11
      Device = Cpu
      Output = output
      Data = { Dataset = FashionMnist; Root = None; TrainLimit = Some 2000; Explain = 64; UtterancesPerWord = None }
      Model = { Architecture = FashionCnn; Epochs = 1; BatchSize = 64; LearningRate = 0.002; Weights = None; Normalise = None }
      Explain = { Targets = [ Predicted ]; Output = Probability; BatchSize = 64; CommonNoise = false; Precision = precision }
      Methods =
        [ { Id = "saliency"; Kind = Saliency false }
          { Id = "integrated_gradients"; Kind = IntegratedGradients(16, GaussLegendre) }
          { Id = "smooth_grad"; Kind = SmoothGrad(sampling 8) }
          { Id = "functional_information"; Kind = FunctionalInformation(sampling 8) } ]
      Metrics = []
      Report = { HeatmapInputs = 2 }
      Full = { Explain = None; Epochs = None } }

[<Tests>]
let tests =
    testSequenced <| testList "precision" [
        test "a bfloat16 copy behind the casts: float32 in and out, the gradient of the bfloat16 weight" {
            // 1/3 is 0.333984375 in bfloat16 (8-bit mantissa): the gradient w is that, delivered as float32
            let outputType, gradientType, gradient = linearGradient (1.0f / 3.0f) true
            Expect.equal (outputType, gradientType) (torch.ScalarType.Float32, torch.ScalarType.Float32) "float32 out, float32 gradient"
            Expect.equal gradient 0.333984375f "the gradient of the bfloat16 weight"
            let _, _, exact = linearGradient (1.0f / 3.0f) false
            Expect.notEqual exact gradient "float32 keeps 1/3 more closely"
            // a weight bfloat16 holds exactly gives float32's gradient bit for bit
            Expect.equal (let _, _, g = linearGradient 0.375f true in g) 0.375f "0.375 is exact in bfloat16"
        }

        test "precision is part of the maps' keys: bf16 and tf32 maps are other steps than fp32's" {
            let keys precision =
                (planOf (spec "runs" precision)).Steps |> List.choose (fun st -> match st.Kind with Plan.Attribute _ -> Some st.Hash | _ -> None) |> Set.ofList
            let fp32, tf32, bf16 = keys Fp32, keys Tf32, keys Bf16
            Expect.equal fp32.Count 4 "four methods"
            Expect.isEmpty (Set.intersect fp32 bf16) "bf16 maps have their own keys"
            Expect.isEmpty (Set.intersect fp32 tf32) "tf32 maps have their own keys"
            Expect.isEmpty (Set.intersect tf32 bf16) "tf32 and bf16 differ"
        }

        test "bf16 with a method that reads the network's stages or rules is a spec error at explain.precision" {
            let s = { spec "runs" Bf16 with Methods = [ { Id = "saliency"; Kind = Saliency false }; { Id = "guided"; Kind = GuidedBackprop } ] }
            let errors = Validate.spec s
            let e = errors |> List.tryFind (fun e -> e.Path = "explain.precision")
            Expect.isSome e $"an error at explain.precision: {errors}"
            Expect.stringContains e.Value.Message "methods[1] (guided)" "names the method"
            Expect.isEmpty (Validate.spec (spec "runs" Bf16)) "gradient methods are fine in bf16"
        }

        test "bf16 maps of gradient methods stay within the stated distance of fp32's on 64 images" {
            let root = Path.Combine(Path.GetTempPath(), $"attribution-precision-{Guid.NewGuid():N}")
            let cache = Path.Combine(root, "cache")
            let run precision = withCache cache (fun () -> Execute.run (planOf (spec (Path.Combine(root, "runs")) precision)) (device ()))
            let fp32Run, bf16Run = run Fp32, run Bf16
            let mapsOf (output: Running.RunOutput) = [ for KeyValue((id, _), stored) in output.Maps -> id, stored.All() ] |> Map.ofList
            let fp32, bf16 = mapsOf fp32Run, mapsOf bf16Run
            // the same maps as the float32 network with its weights and inputs rounded to bfloat16 (and float32
            // arithmetic) gives: how far rounding alone moves a map; saliency, which draws nothing
            let plan = planOf (spec (Path.Combine(root, "runs")) Fp32)
            let roundedSaliency, plainSaliency =
                withCache cache (fun () ->
                    let domain = DataSources.load plan.Spec
                    let network = (Execute.loadNetwork plan domain (device ())).Value
                    let rounded = (Execute.loadNetwork plan domain (device ())).Value
                    rounded.``to``(torch.ScalarType.BFloat16).``to``(torch.ScalarType.Float32) |> ignore
                    let x = domain.Inputs network false fp32Run.Result.ExplainedIndices
                    use targets = torch.tensor(fp32Run.Predictions)
                    let saliency (model: torch.nn.Module<torch.Tensor, torch.Tensor>) (inputs: torch.Tensor) =
                        use e = Attribution.Methods.Presets.Saliency(false).Explain(domain.Explained model, inputs, targets, AttributionSteps.optionsOf plan (Saliency false))
                        e.Maps.clone()
                    saliency rounded (x.``to``(torch.ScalarType.BFloat16).``to``(torch.ScalarType.Float32)), saliency network x)
            Expect.isTrue (plainSaliency.equal(fp32.["saliency"]).all().item<bool>()) "the engine called directly gives the run's fp32 saliency"
            let rows = plainSaliency.shape.[0]
            let flat (t: torch.Tensor) = t.reshape(rows, -1L).``to``(torch.ScalarType.Float64)
            /// Per image: |b - a|_1 / |a|_1, and the Spearman correlation of the two maps' values.
            let compare (a: torch.Tensor) (b: torch.Tensor) =
                let a, b = flat a, flat b
                let distance = ((b - a).abs().sum(1L) / a.abs().sum(1L)).data<float>().ToArray()
                let ranks (t: torch.Tensor) = t.argsort(1L).argsort(1L).``to``(torch.ScalarType.Float64)
                let ra, rb = ranks a, ranks b
                let ca, cb = ra - ra.mean([| 1L |], true), rb - rb.mean([| 1L |], true)
                let spearman = ((ca * cb).sum(1L) / (ca.norm(1, true, 2.0f) * cb.norm(1, true, 2.0f)).squeeze(1L)).data<float>().ToArray()
                let median (v: float[]) = (Array.sort v).[v.Length / 2]
                median distance, median spearman
            let roundingDistance, roundingSpearman = compare plainSaliency roundedSaliency
            printfn "precision: saliency of the float32 network with bfloat16-rounded weights and inputs: median distance %.4f, median Spearman %.4f" roundingDistance roundingSpearman
            Expect.isGreaterThanOrEqual roundingSpearman 0.99 "rounding the weights and inputs alone keeps each map's ranking"
            // The stated tolerance (docs/performance.md): per method, over the images, a median Spearman correlation of
            // at least 0.95 with fp32's map and a median L1 distance of at most 0.15 of its size. Measured here (libtorch
            // 2.10, oneDNN at AVX2, 2026-12-03): Spearman 0.978 to 0.999, distance 0.024 (SmoothGrad) to 0.083 (IG);
            // bf16's arithmetic moves a map more than rounding the weights and inputs alone does (saliency 0.082
            // against 0.016), and averaging over samples takes most of it out.
            for KeyValue(id, a) in fp32 do
                let b: torch.Tensor = bf16.[id]
                Expect.equal b.dtype torch.ScalarType.Float32 $"{id}: float32 maps"
                let distance, spearman = compare a b
                printfn "precision: %s, bf16 against fp32: median distance %.4f, median Spearman %.4f" id distance spearman
                Expect.isGreaterThanOrEqual spearman 0.95 $"{id}: median Spearman with fp32"
                Expect.isLessThanOrEqual distance 0.15 $"{id}: median L1 distance to fp32, of its size"
                Expect.isGreaterThan distance roundingDistance $"{id}: the arithmetic is bfloat16's (farther than rounding alone)"
            Directory.Delete(root, true)
        }
    ]
