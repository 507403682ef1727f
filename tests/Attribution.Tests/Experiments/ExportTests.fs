/// `attribution export RUN --to FOLDER`: a tiny run exported and read back as a reader outside .NET would, file by
/// file from manifest.json; every per-input value reduces to the run's reported value, the targets are the run's
/// predictions, the covariance's factors reproduce it and it is the class covariance of the training data, the maps and
/// noise seeds are the run's; a folder that is not a run, a folder that is not an export and a cache without the run's
/// artefacts are refused with messages that say what to do.
module ExportTests

open System
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open Attribution.Models
open Experiments
open OwnModelTests

/// A spec run with the CLI, then its export: the test's root folder, the run folder and the export folder.
type private Exported = { Root: string; Run: string; Export: string; Cache: string }

/// Runs the CLI with `args` against `cache`: its exit code and what it wrote to stderr.
let private cli (cache: string) (args: string[]) =
    Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", cache)
    let writer = new StringWriter()
    let original = Console.Error
    Console.SetError writer
    try
        let code = Cli.run args
        code, writer.ToString()
    finally
        Console.SetError original
        Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)

let private runAndExport (name: string) (specName: string) (yaml: string) =
    let code, stderr, runs = SpecRuns.run name yaml
    if code <> ExitCode.Ok then failtest $"the run failed ({code}): {stderr}"
    let root = Path.GetDirectoryName runs |> nonNull
    // RUN given as the folder of the spec's runs: its latest run is exported
    let runs, export, cache = Path.Combine(runs, specName), Path.Combine(root, "export"), Path.Combine(root, "cache")
    let code, stderr = cli cache [| "export"; runs; "--to"; export |]
    if code <> ExitCode.Ok then failtest $"the export failed ({code}): {stderr}"
    let run = Directory.ResolveLinkTarget(Path.Combine(runs, RunFolder.LatestName), true) |> nonNull |> _.FullName
    Expect.stringContains stderr $"is {run}" "says which run it exported"
    { Root = root; Run = run; Export = export; Cache = cache }

let private tabularData = fixture "tabular_data.safetensors"

/// Gradients and sampling (two covariance structures) on the tabular fixture, both targets, three metrics.
let private tabularSpec =
    $"""name: tabular
seed: 5
data:
  tensors: {tabularData}
  explain: 20
model:
  torchscript: {fixture "tabular_mlp.pt"}
explain:
  targets: [ground_truth, predicted]
methods:
  - method: saliency
  - method: smooth_grad
    samples: 8
  - id: fi_sigma
    method: functional_information
    samples: 16
    sampler: {{ kind: covariance_gaussian, scale: 0.3, covariance: class }}
  - id: fi_low
    method: functional_information
    samples: 16
    sampler: {{ kind: covariance_gaussian, scale: 0.3, covariance: class, structure: low_rank, rank: 2 }}
metrics:
  - metric: negative_perturbation
  - metric: rank_agreement
  - metric: sensitivity_n
    masks: 20
    points: 3
"""

/// Images with boxes: the localisation and insertion/deletion metrics, and one without per-input values.
let private imageSpec =
    $"""name: own
data:
  tensors: {fixture "own_data.safetensors"}
  explain: 12
model:
  torchscript: {fixture "tiny_cnn.pt"}
methods:
  - method: saliency
  - method: integrated_gradients
    steps: 8
metrics:
  - metric: insertion_deletion
    pixels_per_step: 64
  - metric: effective_heat_ratio
  - metric: explanation_certainty
"""

let private tabular = lazy (runAndExport "export-tabular" "tabular" tabularSpec)
let private image = lazy (runAndExport "export-image" "own" imageSpec)

let private manifestOf (e: Exported) = JsonDocument.Parse(File.ReadAllText(Path.Combine(e.Export, "manifest.json"))).RootElement

let private files (manifest: JsonElement) = manifest.GetProperty("files").EnumerateArray() |> List.ofSeq

let private str (e: JsonElement) (name: string) = e.GetProperty(name).GetString() |> nonNull

/// The tensors of an exported safetensors file, loaded as a plain reader would (no checksum needed).
let private load (e: Exported) (path: string) = Safetensors.Load(Path.Combine(e.Export, path))

let private doubles (t: torch.Tensor) = t.``to``(torch.ScalarType.Float64).contiguous().data<float>().ToArray()
let private longs (t: torch.Tensor) = t.``to``(torch.ScalarType.Int64).contiguous().data<int64>().ToArray()

/// |actual - expected| <= tolerance * max(1, |expected|).
let private close (tolerance: float) (actual: float) (expected: float) (what: string) =
    Expect.isLessThanOrEqual (abs (actual - expected)) (tolerance * max 1.0 (abs expected)) $"{what}: {actual} against {expected}"

let private mean (values: float[]) = Array.average values
let private meanOfDefined (values: float[]) = values |> Array.filter (Double.IsNaN >> not) |> Array.average

/// Every file the manifest lists is there, every tensor has the listed dtype and shape and is listed, and every
/// per-input tensor reduces (as its `summarises.reduction` says) to the value it summarises; returns how many did.
let private checkManifest (e: Exported) =
    let mutable summaries = 0
    for f in files (manifestOf e) do
        let path = str f "path"
        Expect.isTrue (File.Exists(Path.Combine(e.Export, path))) $"{path} is there"
        if str f "format" = "safetensors" then
            let tensors = load e path
            let listed = f.GetProperty("tensors").EnumerateArray() |> List.ofSeq
            Expect.equal (set (listed |> List.map (fun t -> str t "name"))) (set tensors.Keys) $"{path}: every tensor listed, and only those"
            for t in listed do
                let name = str t "name"
                let shape = t.GetProperty("shape").EnumerateArray() |> Seq.map _.GetInt64() |> Array.ofSeq
                Expect.equal tensors.[name].shape shape $"{path}: {name}'s shape"
                Expect.equal (ExportManifest.dtypeName tensors.[name]) (str t "dtype") $"{path}: {name}'s dtype"
                Expect.isNonEmpty (str t "description") $"{path}: {name} is described"
                match t.TryGetProperty "summarises" with
                | true, s ->
                    let values = doubles tensors.[name]
                    let reduced = if str s "reduction" = "mean" then mean values else meanOfDefined values
                    close 1e-9 reduced (s.GetProperty("value").GetDouble()) $"{path}: {name} reduced"
                    summaries <- summaries + 1
                | _ -> ()
    summaries

/// metrics.json of the run folder (what the run reported).
let private reported (e: Exported) = JsonDocument.Parse(File.ReadAllText(Path.Combine(e.Run, "metrics.json"))).RootElement

let private byName (array: JsonElement) (property: string) (value: string) =
    array.EnumerateArray() |> Seq.find (fun x -> x.GetProperty(property).GetString() = value)

/// A Python 3 with NumPy (Debian's python3-numpy, which scripts/test.sh installs), or None.
let private pythonWithNumpy =
    lazy
        ([ "/usr/bin/python3"; "python3" ]
         |> List.tryFind (fun python ->
             try
                 let code, _, _ = TestProcesses.run (Path.GetTempPath()) [] python [ "-c"; "import numpy" ]
                 code = 0
             with _ -> false))

/// Runs the Python block of an export's README.md in the export folder, as a reader would, with a stand-in for the
/// `safetensors` package (tests/fixtures/python) where it is not installed.
let private runReadmeSnippet (e: Exported) =
    match pythonWithNumpy.Force() with
    | None -> skiptest "no Python 3 with NumPy here (Debian: apt-get install python3-numpy), so the export's Python snippet was not run"
    | Some python ->
        let readme = File.ReadAllText(Path.Combine(e.Export, "README.md"))
        let start = readme.IndexOf "```python\n" + "```python\n".Length
        let code = readme.Substring(start, readme.IndexOf("```", start) - start)
        let script = Path.Combine(e.Export, "check_export.py")
        File.WriteAllText(script, code + "\nprint(\"export checked\")\n")
        try
            let shim = Path.Combine(TestProcesses.repoRoot, "tests", "fixtures", "python")
            let exitCode, output, error = TestProcesses.run e.Export [ "PYTHONPATH", shim ] python [ script ]
            Expect.equal exitCode 0 $"the README's Python snippet:\n{output}{error}"
            Expect.stringContains output "export checked" output
        finally
            File.Delete script

[<Tests>]
let tests =
    testSequenced <| testList "export" [
        test "the Python snippet of an export's README runs as written on a tabular and an image export: every per-input value reduces to the reported one, in NumPy" {
            runReadmeSnippet (tabular.Force())
            runReadmeSnippet (image.Force())
        }

        test "every file of a tabular run's export is in the manifest, with its shapes, and every per-input value reduces to the reported one" {
            let e = tabular.Force()
            Expect.isGreaterThanOrEqual (checkManifest e) 40 "per-input values of negative perturbation, rank agreement, sensitivity-N and the certificates"
            Expect.stringContains (File.ReadAllText(Path.Combine(e.Export, "README.md"))) "safetensors.numpy" "the README says how to load it in Python"
        }

        test "the exported per-input negative-perturbation AUCs average to metrics.json's AUCs, and Sensitivity-N's to its curve" {
            let e = tabular.Force()
            let np = reported e |> fun r -> r.GetProperty "NegativePerturbation"
            for methodId in [ "saliency"; "smooth_grad"; "fi_sigma"; "fi_low" ] do
                let values = load e $"metrics/negative_perturbation.{methodId}.safetensors"
                let curves = (byName np "Method" methodId).GetProperty("Result").GetProperty("Curves")
                for curve in [ "accuracy_gt"; "accuracy_predicted"; "consistency" ] do
                    close 1e-9 (mean (doubles values.[curve])) ((byName curves "Name" curve).GetProperty("Auc").GetDouble()) $"{methodId} {curve}"
            let sensitivity = reported e |> fun r -> r.GetProperty("Metrics").EnumerateArray() |> Seq.find (fun m -> m.GetProperty("Metric").GetString() = "sensitivity_n" && m.GetProperty("Method").GetString() = "fi_sigma")
            let curve = (byName (sensitivity.GetProperty "Curves") "Name" "correlation").GetProperty("Values").EnumerateArray() |> Seq.map _.GetDouble() |> Array.ofSeq
            let values = load e "metrics/sensitivity_n.fi_sigma.safetensors"
            let sizes = sensitivity.GetProperty("X").EnumerateArray() |> Seq.map _.GetDouble() |> Array.ofSeq
            Expect.equal values.Count sizes.Length "one tensor per N"
            for k, n in Array.indexed sizes do
                close 1e-9 (meanOfDefined (doubles values.[$"correlation/N={n}"])) curve.[k] $"the correlation at N = {n}"
        }

        test "the exported targets of the predicted maps are the model's predictions, and labels and inputs are the data's rows" {
            let e = tabular.Force()
            let inputs = load e "inputs.safetensors"
            let predictions = longs inputs.["prediction"]
            Expect.equal (longs inputs.["target_predicted"]) predictions "predicted maps explain the predictions"
            Expect.equal (longs (inputs.["logits"].argmax(1L))) predictions "the model's outputs give the same predictions"
            Expect.equal (longs inputs.["target_ground_truth"]) (longs inputs.["label"]) "ground-truth maps explain the labels"
            let data = Attribution.Data.TensorFile.Load tabularData
            use index = torch.tensor(longs inputs.["test_index"])
            Expect.equal (longs inputs.["label"]) (longs (data.Test.Labels.index_select(0L, index))) "the data's labels at test_index"
            closeRelative inputs.["inputs"] (data.Test.Images.index_select(0L, index)) "the data's rows at test_index"
            let recorded = File.ReadAllLines(Path.Combine(e.Run, InputRecord.FileName)) |> Array.skip 1 |> Array.map (fun l -> int64 (l.Split(',').[3]))
            Expect.equal predictions recorded "the run folder's inputs.csv"
            Expect.equal (File.ReadAllLines(Path.Combine(e.Export, "inputs.csv")).Length) 21 "a header and a row per input"
        }

        test "the exported class covariance is the class covariance of the training rows plus its jitter, and its factors reproduce it" {
            let e = tabular.Force()
            let c = load e "covariance/shared_across_channels-jitter=1E-05.safetensors"
            let covariance = c.["covariance"].``to``(torch.ScalarType.Float64)
            let factor = c.["factor"].``to``(torch.ScalarType.Float64)
            let scale = covariance.abs().max().item<float>()
            let worst = (factor.matmul(factor.transpose(1L, 2L)) - covariance).abs().max().item<float>()
            Expect.isLessThanOrEqual worst (1e-5 * scale) "L L^T = covariance, to float32 precision"
            // The estimate, done here by hand: unbiased covariance of each class's training rows, plus j_k on the diagonal.
            let data = Attribution.Data.TensorFile.Load tabularData
            let rows = data.Train.Images.reshape(-1L, 6L).``to``(torch.ScalarType.Float64)
            let labels = longs data.Train.Labels
            let jitters = doubles c.["jitter"]
            Expect.equal (longs c.["count"]) [| for k in 0L .. 2L -> labels |> Array.filter ((=) k) |> Array.length |> int64 |] "inputs per class"
            for k in 0 .. 2 do
                use index = torch.tensor(labels |> Array.indexed |> Array.filter (fun (_, l) -> l = int64 k) |> Array.map (fst >> int64))
                let x = rows.index_select(0L, index)
                let centred = x - x.mean([| 0L |], keepdim = true)
                let expected = centred.t().matmul(centred) / float (x.shape.[0] - 1L) + torch.eye(6L, dtype = torch.ScalarType.Float64) * jitters.[k]
                let difference = (covariance.[int64 k] - expected).abs().max().item<float>()
                Expect.isLessThanOrEqual difference (1e-5 * expected.abs().max().item<float>()) $"class {k}"
            // Low rank plus diagonal: every feature keeps its own variance, diag(U U^T) + d = diag(Sigma).
            let low = load e "covariance/low_rank_plus_diagonal_2-jitter=1E-05.safetensors"
            let u, d = low.["u"].``to``(torch.ScalarType.Float64), low.["diagonal"].``to``(torch.ScalarType.Float64)
            let variances = u.square().sum([| 2L |]) + d
            let ownVariances = covariance.diagonal(0L, 1L, 2L) - torch.tensor(jitters).unsqueeze(1L)
            Expect.isLessThanOrEqual ((variances - ownVariances).abs().max().item<float>()) (1e-4 * ownVariances.abs().max().item<float>()) "diag(U U^T) + d = diag(Sigma)"
        }

        test "each exported map file holds the run's cached maps and its method's noise seed as a plain integer" {
            let e = tabular.Force()
            let spec = match Validate.text "spec.yaml" (File.ReadAllText(Path.Combine(e.Run, "spec.yaml"))) with Ok s -> s | Error errors -> failtest (SpecError.formatAll errors)
            let maps = files (manifestOf e) |> List.filter (fun f -> (str f "path").StartsWith "maps/")
            Expect.equal maps.Length 8 "four methods, two targets"
            for f in maps do
                let path = str f "path"
                let metadata = f.GetProperty "metadata"
                let methodId = (metadata.GetProperty "methods").[0].GetString() |> nonNull
                let kind = (spec.Methods |> List.find (fun m -> m.Id = methodId)).Kind
                let seed = Plan.methodSeed spec kind
                Expect.equal (metadata.GetProperty("noise_seed").GetInt64()) seed $"{path}: the manifest's noise_seed is a JSON integer"
                Expect.equal (Safetensors.ReadMetadata(Path.Combine(e.Export, path)).["noise_seed"]) (string seed) $"{path}: the file's metadata"
                let cached = Safetensors.Load(Path.Combine(e.Cache, "attributions", str metadata "step_hash" + ".safetensors"))
                let exported = (load e path).["maps"]
                Expect.equal exported.shape cached.["maps"].shape $"{path}: the cache's shape"
                Expect.isTrue (exported.eq(cached.["maps"]).all().item<bool>()) $"{path}: the cache's maps, bit for bit"
        }

        test "an image run's boxes, EHR and insertion/deletion values are exported; a metric without per-input values is named" {
            let e = image.Force()
            Expect.isGreaterThanOrEqual (checkManifest e) 20 "insertion/deletion and EHR per input"
            let inputs = load e "inputs.safetensors"
            let data = Attribution.Data.TensorFile.Load(fixture "own_data.safetensors")
            let indices = longs inputs.["test_index"]
            let boxes = longs inputs.["boxes"]
            let regions = inputs.["regions"]
            for i, testIndex in Array.indexed indices do
                match (nonNull data.Boxes).[int testIndex] with
                | :? Attribution.Data.Box as b ->
                    Expect.equal boxes.[4 * i .. 4 * i + 3] [| int64 b.Top; int64 b.Left; int64 b.Height; int64 b.Width |] $"box of test input {testIndex}"
                    Expect.equal (regions.[int64 i].sum().item<int64>()) (int64 b.Area) $"region of test input {testIndex} covers its box"
                | other -> failtest $"the fixture has boxes, got {other}"
            let ehr = load e "metrics/effective_heat_ratio.integrated_gradients.safetensors"
            let scalar = reported e |> fun r -> r.GetProperty("Metrics").EnumerateArray() |> Seq.find (fun m -> m.GetProperty("Metric").GetString() = "effective_heat_ratio" && m.GetProperty("Method").GetString() = "integrated_gradients")
            close 1e-9 (meanOfDefined (doubles ehr.["ehr"])) ((byName (scalar.GetProperty "Scalars") "Name" "ehr").GetProperty("Value").GetDouble()) "EHR: the mean over the scored inputs"
            let without = (manifestOf e).GetProperty("metrics_without_per_input_values").EnumerateArray() |> Seq.map (fun w -> str w "metric") |> List.ofSeq
            Expect.equal without [ "explanation_certainty"; "explanation_certainty" ] "explanation certainty, once per method, with why"
            // without per-input values, its interval is the jackknife's, and it holds the estimate
            let certainties = (reported e).GetProperty("Metrics").EnumerateArray() |> Seq.filter (fun m -> m.GetProperty("Metric").GetString() = "explanation_certainty") |> List.ofSeq
            Expect.hasLength certainties 2 "explanation certainty of both methods"
            for m in certainties do
                let value = (byName (m.GetProperty "Scalars") "Name" "mutual_information_nats").GetProperty("Value").GetDouble()
                let interval = byName (m.GetProperty "Intervals") "Name" "mutual_information_nats"
                let low, high = interval.GetProperty("Low").GetDouble(), interval.GetProperty("High").GetDouble()
                Expect.isTrue (low < value && value < high) $"explanation certainty {value} in its interval [{low}, {high}]"
        }

        test "a folder that is not a run, a target that is not an export, and a cache without the run's artefacts are refused, saying what to do" {
            let e = tabular.Force()
            let code, stderr = cli e.Cache [| "export"; e.Root; "--to"; Path.Combine(e.Root, "elsewhere") |]
            Expect.equal code ExitCode.BadInput stderr
            Expect.stringContains stderr "is not a run folder" "RUN must be a run folder"
            let code, stderr = cli e.Cache [| "export"; e.Export; "--to"; Path.Combine(e.Root, "elsewhere") |]
            Expect.stringContains stderr "is an export, not a run folder" $"an export is not a run ({code})"
            // A folder of the user's is never written into.
            let mine = Path.Combine(e.Root, "mine")
            Directory.CreateDirectory mine |> ignore
            File.WriteAllText(Path.Combine(mine, "notes.txt"), "keep")
            let code, stderr = cli e.Cache [| "export"; e.Run; "--to"; mine |]
            Expect.equal code ExitCode.BadSpec stderr
            Expect.stringContains stderr "is not an export" "names why"
            Expect.stringContains stderr "notes.txt" "names what is there"
            Expect.equal (Directory.GetFileSystemEntries mine |> Array.map (Path.GetFileName >> nonNull)) [| "notes.txt" |] "untouched"
            // A file added to an earlier export stops the next one from replacing it.
            File.WriteAllText(Path.Combine(e.Export, "extra.txt"), "mine")
            let code, stderr = cli e.Cache [| "export"; e.Run; "--to"; e.Export |]
            Expect.equal code ExitCode.BadSpec stderr
            Expect.stringContains stderr "extra.txt" "names the stranger"
            File.Delete(Path.Combine(e.Export, "extra.txt"))
            // A cache that lacks an artefact of the run.
            let partial = Path.Combine(e.Root, "partial-cache")
            for file in Directory.GetFiles(e.Cache, "*", SearchOption.AllDirectories) do
                let target = Path.Combine(partial, Path.GetRelativePath(e.Cache, file))
                Directory.CreateDirectory(Path.GetDirectoryName target |> nonNull) |> ignore
                File.Copy(file, target)
            let sensitivity = files (manifestOf e) |> List.find (fun f -> str f "path" = "metrics/sensitivity_n.saliency.safetensors")
            File.Delete(Path.Combine(partial, "metrics", str (sensitivity.GetProperty "metadata") "step_hash" + ".json"))
            let code, stderr = cli partial [| "export"; e.Run; "--to"; Path.Combine(e.Root, "from-partial") |]
            Expect.equal code ExitCode.BadInput stderr
            Expect.stringContains stderr "sensitivity_n/saliency" "names the missing step"
            Expect.stringContains stderr "re-run its spec" "says what to do"
            Expect.isFalse (Directory.Exists(Path.Combine(e.Root, "from-partial"))) "nothing written"
            // The earlier export is replaced whole by the next one.
            let code, stderr = cli e.Cache [| "export"; e.Run; "--to"; e.Export |]
            Expect.equal code ExitCode.Ok stderr
            checkManifest e |> ignore
        }

        test "a run folder whose plan no longer matches its spec is refused: the cache would hold another run's artefacts" {
            let e = tabular.Force()
            let copy = Path.Combine(e.Root, "runs", "edited")
            Directory.CreateDirectory copy |> ignore
            for file in Directory.GetFiles e.Run do File.Copy(file, Path.Combine(copy, Path.GetFileName file |> nonNull))
            File.WriteAllText(Path.Combine(copy, "spec.yaml"), File.ReadAllText(Path.Combine(copy, "spec.yaml")).Replace("seed: 5", "seed: 6"))
            let code, stderr = cli e.Cache [| "export"; copy; "--to"; Path.Combine(e.Root, "edited-export") |]
            Expect.equal code ExitCode.BadInput stderr
            Expect.stringContains stderr "plan.txt" "names the plan"
            Expect.stringContains stderr "re-run its spec" "says what to do"
        }

        test "`export` is in the command line's help, and without RUN or --to it is a command-line error" {
            let writer = new StringWriter()
            let original = Console.Out
            Console.SetOut writer
            try Cli.run [| "--help" |] |> ignore finally Console.SetOut original
            Expect.stringContains (writer.ToString()) "export <options>" "listed"
            let code, stderr = cli (TestFiles.freshDir "export-cache") [| "export"; "runs/x" |]
            Expect.equal code ExitCode.BadSpec stderr
            Expect.stringContains stderr "--to FOLDER" "says what is missing"
        }
    ]
