/// A user's own model and data from a spec: `torchscript:` and `tensors:` run end to end, and every misfit (a layer or
/// rule-based method on TorchScript, weights given twice, a normalisation of the wrong width, a file that is not
/// TorchScript) is a clear error before any work.
module OwnModelSpecTests

open System
open System.IO
open System.Text.Json
open Expecto
open Experiments

let private fixture = OwnModelTests.fixture

let private spec (extraModel: string) (methods: string) (metrics: string) =
    $"""name: own
data:
  tensors: {fixture "own_data.safetensors"}
  explain: 12
model:
  torchscript: {fixture "tiny_cnn.pt"}
{extraModel}methods:
{methods}metrics:
{metrics}"""

/// The spec's model and data lines, to swap for other sources.
let private scriptLine = "torchscript: " + fixture "tiny_cnn.pt"
let private tensorsLine = "tensors: " + fixture "own_data.safetensors"

let private defaultMethods = "  - method: saliency\n  - method: integrated_gradients\n    steps: 16\n  - id: fi_sigma\n    method: functional_information\n    samples: 8\n"
let private defaultMetrics = "  - metric: insertion_deletion\n    pixels_per_step: 64\n  - metric: effective_heat_ratio\n"

let private captured (f: unit -> 'a) : 'a * string =
    let writer = new StringWriter()
    let original = Console.Error
    Console.SetError writer
    try f (), writer.ToString() finally Console.SetError original

let private errorsOf (yaml: string) =
    match Validate.text "own.yaml" yaml with
    | Ok _ -> []
    | Error errors -> errors |> List.map (fun e -> e.Path, e.Message)

[<Tests>]
let tests =
    testSequenced <| testList "own model from a spec" [
        test "a TorchScript model on a data file runs from YAML: maps, insertion/deletion and EHR on the file's boxes" {
            let root = TestFiles.freshDir "own-spec"
            let file = Path.Combine(root, "own.yaml")
            File.WriteAllText(file, spec "" defaultMethods defaultMetrics)
            Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", Path.Combine(root, "cache"))
            try
                let code, stderr = captured (fun () -> Cli.run [| "run"; file; "--output"; Path.Combine(root, "runs") |])
                Expect.equal code ExitCode.Ok stderr
            finally
                Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)
            use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "runs", "own", "latest", "metrics.json")))
            Expect.equal (doc.RootElement.GetProperty("Model").GetProperty("TestAccuracy").GetDouble()) 1.0 "the fixture model's accuracy"
            let metric name = [ for m in doc.RootElement.GetProperty("Metrics").EnumerateArray() do if m.GetProperty("Metric").GetString() = name then yield m ]
            Expect.equal (metric "insertion_deletion").Length 3 "insertion/deletion per method"
            let ehr = metric "effective_heat_ratio"
            Expect.equal ehr.Length 3 "EHR per method, on the file's boxes"
            for m in ehr do
                let value = m.GetProperty("Scalars").[0].GetProperty("Value").GetDouble()
                Expect.isTrue (value > 0.0 && value <= 1.0) "an EHR"
        }

        test "the spec's own-model fields read and write back: torchscript, tensors, normalise" {
            let yaml = spec "  normalise: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }\n" defaultMethods defaultMetrics
            match Validate.text "own.yaml" yaml with
            | Error e -> failtest (SpecError.formatAll e)
            | Ok s ->
                Expect.equal s.Model.Architecture (TorchScript(fixture "tiny_cnn.pt")) "torchscript"
                Expect.equal s.Data.Dataset (TensorFile(fixture "own_data.safetensors")) "tensors"
                Expect.equal s.Model.Normalise (Some { Mean = [ 0.5; 0.5; 0.5 ]; Std = [ 0.25; 0.25; 0.25 ] }) "normalise"
                Expect.equal (Yaml.parseText "r.yaml" (Yaml.render s)) (Ok s) "render then parse"
        }

        test "misfits are located errors before any work: layers, ReLUs, stages to randomise, weights twice, normalisation width, both sources" {
            let layer = errorsOf (spec "" "  - method: grad_cam\n    stage: conv1\n" defaultMetrics)
            Expect.exists layer (fun (p, m) -> p = "methods[0].stage" && m.Contains "no stage") $"%A{layer}"
            let relus = errorsOf (spec "" "  - method: guided_backprop\n" defaultMetrics)
            Expect.exists relus (fun (p, m) -> p = "methods[0].method" && m.Contains "ReLUs") $"%A{relus}"
            let randomisation = errorsOf (spec "" defaultMethods "  - metric: parameter_randomisation\n")
            Expect.exists randomisation (fun (p, _) -> p = "metrics[0].metric") $"%A{randomisation}"
            let weightsFile = fixture "tiny_cnn.safetensors"
            let weights = errorsOf (spec $"  weights: {weightsFile}\n" defaultMethods defaultMetrics)
            Expect.exists weights (fun (p, m) -> p = "model.weights" && m.Contains "carries its own weights") $"%A{weights}"
            let width = errorsOf (spec "  normalise: { mean: [0.5, 0.5], std: [0.25, 0.25] }\n" defaultMethods defaultMetrics)
            Expect.exists width (fun (p, m) -> p = "model.normalise.mean" && m.Contains "has 3") $"%A{width}"
            let both = errorsOf ((spec "" defaultMethods defaultMetrics).Replace("model:\n", "model:\n  architecture: fashion_cnn\n"))
            Expect.exists both (fun (p, m) -> m.Contains "not both") $"%A{both}"
        }

        test "a file that is not TorchScript and a data file without its tensors are input errors (exit 2) naming the file" {
            let root = TestFiles.freshDir "own-bad"
            let run (yaml: string) =
                let file = Path.Combine(root, "bad.yaml")
                File.WriteAllText(file, yaml)
                Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", Path.Combine(root, "cache"))
                try captured (fun () -> Cli.run [| "run"; file; "--output"; Path.Combine(root, "runs") |])
                finally Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)
            let code, stderr = run ((spec "" defaultMethods defaultMetrics).Replace("tiny_cnn.pt", "tiny_cnn.pth"))
            Expect.equal code ExitCode.BadInput stderr
            Expect.stringContains stderr "is not a TorchScript model" stderr
            Expect.stringContains stderr "torch.jit.trace" "says how to make one"
            // a data file with only the test split
            let partial = Path.Combine(root, "partial.safetensors")
            let full = Attribution.Models.Safetensors.Load(fixture "own_data.safetensors")
            Attribution.Models.Safetensors.Save(partial, readOnlyDict [ "test_inputs", full.["test_inputs"]; "test_labels", full.["test_labels"] ])
            let code, stderr = run ((spec "" defaultMethods "  - metric: rank_agreement\n").Replace(fixture "own_data.safetensors", partial))
            Expect.equal code ExitCode.BadInput stderr
            Expect.stringContains stderr "has no tensor 'train_labels'" stderr
        }
    
        test "a TorchVision resnet18 with a PyTorch .pth runs from YAML: Grad-CAM at layer4 by module path, the weights' source reported" {
            let root = TestFiles.freshDir "own-torchvision"
            let weights = Path.Combine(root, "resnet18.pth")
            do
                use model = Attribution.Models.TorchVisionModels.Create("resnet18", 10)
                Attribution.Models.StateDict.LoadInto(model, StateDictTests.formulaStateDict model, "formula")
                TorchSharp.PyBridge.PyBridgeModuleExtensions.save_py(model, weights, null) |> ignore
            let yaml =
                (spec "" "  - method: saliency\n  - method: grad_cam\n    stage: layer4\n" "  - metric: insertion_deletion\n    pixels_per_step: 64\n")
                    .Replace(scriptLine, $"torchvision: resnet18\n  weights: {weights}")
            let file = Path.Combine(root, "tv.yaml")
            File.WriteAllText(file, yaml)
            Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", Path.Combine(root, "cache"))
            try
                let code, stderr = captured (fun () -> Cli.run [| "run"; file; "--output"; Path.Combine(root, "runs") |])
                Expect.equal code ExitCode.Ok stderr
            finally
                Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)
            use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "runs", "own", "latest", "metrics.json")))
            Expect.equal (doc.RootElement.GetProperty("Model").GetProperty("Source").GetString()) weights "the weights file is the model's source"
            let metrics = [ for m in doc.RootElement.GetProperty("Metrics").EnumerateArray() -> m.GetProperty("Method").GetString() ]
            Expect.containsAll metrics [ "saliency"; "grad_cam" ] "both methods evaluated"
        }

        test "TorchVision misfits are errors before any work: a stage misspelt or bypassed, ReLU swaps, one channel, an unknown name" {
            let tv (extra: string) (methods: string) =
                errorsOf ((spec "" methods defaultMetrics).Replace(scriptLine, "torchvision: resnet18\n" + extra))
            let misspelt = tv "" "  - method: grad_cam\n    stage: layer_4\n"
            Expect.exists misspelt (fun (p, m) -> p = "methods[0].stage" && m.Contains "no stage") $"%A{misspelt}"
            let formatted = match Validate.text "own.yaml" ((spec "" "  - method: grad_cam\n    stage: layer_4\n" defaultMetrics).Replace(scriptLine, "torchvision: resnet18")) with Error e -> SpecError.formatAll e | Ok _ -> ""
            Expect.stringContains formatted "did you mean 'layer4'" formatted
            let bypassed = tv "" "  - method: grad_cam\n    stage: layer4.0.conv2\n"
            Expect.exists bypassed (fun (p, m) -> p = "methods[0].stage" && m.Contains "bypasses") $"%A{bypassed}"
            let relus = tv "" "  - method: guided_backprop\n"
            Expect.exists relus (fun (p, m) -> p = "methods[0].method" && m.Contains "ReLUs") $"%A{relus}"
            let gray = errorsOf ((spec "" defaultMethods "  - metric: rank_agreement\n").Replace(scriptLine, "torchvision: resnet18").Replace(tensorsLine, "dataset: fashion_mnist"))
            Expect.exists gray (fun (p, m) -> p = "model.torchvision" && m.Contains "3-channel") $"%A{gray}"
            let unknown = errorsOf ((spec "" defaultMethods defaultMetrics).Replace(scriptLine, "torchvision: resnet19"))
            Expect.exists unknown (fun (p, m) -> p = "model.torchvision" && m.Contains "unknown") $"%A{unknown}"
        }

        test "weights of another network given to a TorchVision model: exit 2, the names that differ listed; epochs 0 is a random model, said so" {
            let mutable runs = ""
            let run (yaml: string) =
                let code, stderr, folder = SpecRuns.run "own-tv-bad" yaml
                runs <- folder
                code, stderr
            let tv (model: string) = (spec "" "  - method: saliency\n" "  - metric: rank_agreement\n").Replace(scriptLine, model)
            let code, stderr = run (tv ("torchvision: resnet18\n  weights: " + fixture "tiny_cnn.pth"))
            Expect.equal code ExitCode.BadInput stderr
            Expect.stringContains stderr "missing from the file: " stderr
            Expect.stringContains stderr "tiny_cnn.pth" "the file named"
            let code, stderr = run (tv "torchvision: resnet18\n  epochs: 0")
            Expect.equal code ExitCode.Ok stderr
            use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(runs, "own", "latest", "metrics.json")))
            Expect.equal (doc.RootElement.GetProperty("Model").GetProperty("Source").GetString()) "random initialisation (untrained)" "the report says the model is random"
        }
    ]
