/// Tabular data [N, F] of a user's (tests/fixtures: six named features, three classes, an MLP scripted to TorchScript
/// by PyTorch): the maps equal PyTorch's, a spec runs the gradient, sampling and occlusion methods and the masking
/// metrics feature by feature, a shipped MLP trains on it, and pixel-only methods and metrics are refused up front.
module TabularTests

open System
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open Attribution.Methods
open Attribution.Models
open Experiments
open OwnModelTests

let private data = fixture "tabular_data.safetensors"
let private scripted = fixture "tabular_mlp.pt"

let private spec (model: string) (methods: string) (metrics: string) =
    $"name: tabular\ndata:\n  tensors: {data}\n  explain: 20\nmodel:\n{model}methods:\n{methods}metrics:\n{metrics}"

let private scriptModel = $"  torchscript: {scripted}\n"

let private errorsOf = SpecRuns.errorsOf

/// A spec run; the run folder of the spec named `tabular`.
let private runSpec (name: string) (yaml: string) =
    let code, stderr, runs = SpecRuns.run name yaml
    code, stderr, Path.Combine(runs, "tabular", RunFolder.LatestName)

[<Tests>]
let tests =
    testSequenced <| testList "tabular data" [
        test "a tabular data file loads as one-row images [N, 1, 1, F] with its features' and classes' names" {
            let d = Attribution.Data.TensorFile.Load data
            Expect.isTrue d.Tabular "tabular"
            Expect.equal d.Test.Images.shape [| 60L; 1L; 1L; 6L |] "a feature a pixel"
            Expect.equal (List.ofSeq (nonNull d.FeatureNames)) [ "income"; "age"; "noise_a"; "debt"; "noise_b"; "noise_c" ] "feature names"
            Expect.equal (List.ofSeq d.Test.ClassNames) [ "low"; "middle"; "high" ] "class names"
        }

        test "the scripted MLP's saliency and Integrated Gradients, through the one-row view, equal PyTorch's to 1e-5" {
            use scope = torch.NewDisposeScope()
            use inner = TorchScriptModel.Load scripted
            use model = new ReshapedModel(inner, [| 6L |], [| 1L; 1L; 6L |])
            model.eval() |> ignore
            let d = Attribution.Data.TensorFile.Load data
            let references = Safetensors.Load(fixture "tabular_references.safetensors")
            let x = d.Test.Images.narrow(0L, 0L, 4L)
            let targets = references.["targets"]
            use saliency = Presets.Saliency(false).Explain(model, x, targets, ExplainOptions())
            closeRelative (saliency.Maps.reshape(4L, 6L)) references.["saliency"] "saliency"
            use ig = Presets.IntegratedGradients(32, Attribution.Sampling.IntegrationRule.GaussLegendre).Explain(model, x, targets, ExplainOptions())
            closeRelative (ig.Maps.reshape(4L, 6L)) references.["integrated_gradients"] "integrated gradients"
        }

        test "a user's TorchScript model on tabular data runs from YAML: gradients, FI with the class covariance, occlusion, masking metrics" {
            let methods =
                "  - method: saliency\n  - method: integrated_gradients\n    steps: 16\n  - method: occlusion\n    window: 1\n    stride: 1\n"
                + "  - id: fi_sigma\n    method: functional_information\n    samples: 16\n    sampler: { kind: covariance_gaussian, scale: 0.3, covariance: class }\n"
            let metrics = "  - metric: negative_perturbation\n  - metric: sensitivity_n\n    masks: 20\n    points: 3\n"
            let code, stderr, run = runSpec "tabular-script" (spec scriptModel methods metrics)
            Expect.equal code ExitCode.Ok stderr
            use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")))
            Expect.equal (doc.RootElement.GetProperty("Model").GetProperty("TestAccuracy").GetDouble()) 1.0 "the fixture model's accuracy"
            Expect.isTrue (File.Exists(Path.Combine(run, "features-0.png"))) "a bar chart per explained input"
            Expect.stringContains (File.ReadAllText(Path.Combine(run, "report.md"))) "features-0.png" "shown in the report"
        }

        test "a split half with a constant map (a saturated probability) is undefined, counted and left out of the diagnostics row, which stays a number" {
            // FI-Sigma at 64 samples (own-tabular.yaml's count before issue 12): one of the 60 inputs has a map of denormal
            // zeros, whose halves have no ranks
            let yaml =
                $"name: tabular\ndata:\n  tensors: {data}\n  explain: 60\nmodel:\n{scriptModel}explain: {{ targets: [ground_truth] }}\nmethods:\n"
                + "  - id: fi_sigma\n    method: functional_information\n    samples: 64\n    sampler: { kind: covariance_gaussian, scale: 0.3, covariance: class }\nmetrics: []\n"
            let code, stderr, run = runSpec "tabular-undefined" yaml
            Expect.equal code ExitCode.Ok stderr
            let report = File.ReadAllText(Path.Combine(run, "report.md"))
            let row = report.Split('\n') |> Array.find (fun l -> l.StartsWith "| fi_sigma | ground_truth | split_half_spearman |")
            Expect.isFalse (row.Contains "NaN") row
            Expect.stringContains report "`fi_sigma` (ground_truth) `split_half_spearman`: undefined (NaN) for 1 of 60 inputs" "counted"
        }

        test "the two features that decide the class carry most of the saliency of the scripted MLP" {
            // The label is a function of income - debt alone: a faithful gradient map puts its mass there.
            use scope = torch.NewDisposeScope()
            use inner = TorchScriptModel.Load scripted
            use model = new ReshapedModel(inner, [| 6L |], [| 1L; 1L; 6L |])
            model.eval() |> ignore
            let d = Attribution.Data.TensorFile.Load data
            use maps = Presets.Saliency(true).Explain(model, d.Test.Images, d.Test.Labels, ExplainOptions())
            let perFeature = maps.Maps.abs().reshape(-1L, 6L).mean([| 0L |])
            let share = (perFeature.[0L] + perFeature.[3L]).item<float32>() / perFeature.sum().item<float32>()
            Expect.isGreaterThan share 0.6f $"income and debt hold {share:P0} of the mean |gradient|"
        }

        test "a shipped mlp trains on tabular data and DeepLIFT explains it (its ReLUs swap)" {
            let code, stderr, run = runSpec "tabular-mlp" (spec "  architecture: mlp\n  epochs: 30\n  batch_size: 32\n  learning_rate: 0.01\n" "  - method: deep_lift\n  - method: saliency\n" "  - metric: rank_agreement\n")
            Expect.equal code ExitCode.Ok stderr
            use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")))
            Expect.isGreaterThan (doc.RootElement.GetProperty("Model").GetProperty("TestAccuracy").GetDouble()) 0.8 "the MLP learns the bands"
        }

        test "pixel-only methods and metrics, windows over one feature, a normalisation of the wrong width and image models are refused before any work" {
            let pixel = errorsOf (spec scriptModel "  - method: grad_cam\n    stage: conv2\n" "  - metric: rank_agreement\n")
            Expect.exists pixel (fun (p, m) -> p = "methods[0].method" && m.Contains "image pixels") $"%A{pixel}"
            let window = errorsOf (spec scriptModel "  - method: occlusion\n    window: 2\n    stride: 1\n" "  - metric: rank_agreement\n")
            Expect.exists window (fun (p, m) -> p = "methods[0].window" && m.Contains "one feature at a time") $"%A{window}"
            let metric = errorsOf (spec scriptModel "  - method: saliency\n" "  - metric: insertion_deletion\n")
            Expect.exists metric (fun (p, m) -> p = "metrics[0].metric" && m.Contains "tabular") $"%A{metric}"
            let width = errorsOf (spec (scriptModel + "  normalise: { mean: [0, 0, 0], std: [1, 1, 1] }\n") "  - method: saliency\n" "  - metric: rank_agreement\n")
            Expect.exists width (fun (p, m) -> p = "model.normalise.mean" && m.Contains "has 6") $"%A{width}"
            let image = errorsOf (spec "  architecture: fashion_cnn\n" "  - method: saliency\n" "  - metric: rank_agreement\n")
            Expect.exists image (fun (p, _) -> p = "model.architecture") $"%A{image}"
        }
    ]
