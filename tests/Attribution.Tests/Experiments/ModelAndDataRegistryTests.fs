/// A user's own network and data loader, written in .NET and registered from their code (no edit to the library),
/// named in YAML: the network loads a PyTorch state dict and layer methods reach its modules by path; the loader's
/// data is explained with its boxes; names are checked against the registries.
module ModelAndDataRegistryTests

open System
open System.IO
open System.Text.Json
open Expecto
open Experiments
open OwnModelTests

let private network : ModelRegistry.ModelEntry =
    { Name = "quadrant_net"
      Doc = "the fixture's TinyCnn, written in .NET (tests)"
      Modalities = [ Modality.Image ]
      Build = fun _ _ -> new StateDictTests.TinyCnn() :> ModelRegistry.Network }

let private quadrants : DatasetRegistry.DatasetEntry =
    { Name = "quadrants"
      Doc = "the fixture's data file, through a loader of the user's (tests)"
      Modality = Modality.Image
      Shape = (3, 32, 32)
      HasBoxes = true
      ContentKey = fun () -> Attribution.IO.ContentHash.Sha256OfFile(fixture "own_data.safetensors")
      Load =
        fun _ ->
            let d = Attribution.Data.TensorFile.Load(fixture "own_data.safetensors")
            ({ Train = d.Train; Test = d.Test; Boxes = Option.ofObj d.Boxes; Features = None } : DatasetRegistry.DatasetParts) }

let private withRegistered (f: unit -> unit) =
    ModelRegistry.register network
    DatasetRegistry.register quadrants
    try f ()
    finally
        ModelRegistry.unregister network.Name
        DatasetRegistry.unregister quadrants.Name

let private weights = fixture "tiny_cnn.pth"

let private spec (methods: string) =
    $"name: reg\ndata:\n  dataset: quadrants\n  explain: 12\nmodel:\n  architecture: quadrant_net\n  weights: {weights}\nmethods:\n{methods}metrics:\n  - metric: effective_heat_ratio\n"

let private errorsOf = SpecRuns.errorsOf

[<Tests>]
let tests =
    testSequenced <| testList "model and dataset registries" [
        test "a registered network with a .pth on a registered loader's data runs from YAML: Grad-CAM at a module path, EHR on its boxes" {
            withRegistered (fun () ->
                let code, stderr, runs = SpecRuns.run "registry-run" (spec "  - method: saliency\n  - method: grad_cam\n    stage: conv2\n")
                Expect.equal code ExitCode.Ok stderr
                use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(runs, "reg", "latest", "metrics.json")))
                Expect.equal (doc.RootElement.GetProperty("Model").GetProperty("TestAccuracy").GetDouble()) 1.0 "the PyTorch weights, loaded by name"
                let ehr = [ for m in doc.RootElement.GetProperty("Metrics").EnumerateArray() do if m.GetProperty("Metric").GetString() = "effective_heat_ratio" then yield m ]
                Expect.equal ehr.Length 2 "EHR per method, on the loader's boxes")
        }

        test "names are checked against the registries; a module path is checked on the registered network; its ReLUs are its own" {
            withRegistered (fun () ->
                let stage = errorsOf (spec "  - method: grad_cam\n    stage: conv3\n")
                Expect.exists stage (fun (p, m) -> p = "methods[0].stage" && m.Contains "no stage") $"%A{stage}"
                let relus = errorsOf (spec "  - method: guided_backprop\n")
                Expect.exists relus (fun (p, m) -> p = "methods[0].method" && m.Contains "IRectifiedModel") $"%A{relus}")
            let unknown = errorsOf (spec "  - method: saliency\n")
            Expect.exists unknown (fun (p, m) -> p = "data.dataset" && m.Contains "unknown") $"unregistered: %A{unknown}"
            Expect.throwsT<ArgumentException> (fun () -> ModelRegistry.register { network with Name = "fashion_cnn" }) "a shipped name is refused"
        }
    ]
