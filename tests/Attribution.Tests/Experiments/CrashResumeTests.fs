/// Crash safety of the real CLI: `attribution run` as a child process, killed with SIGKILL (kill -9: no handler, no
/// finally block runs) during training, during attribution and during a metric, then run again to completion; and two
/// processes started together on one spec, one cache and one output folder. Each case has its own cache; all of them
/// compare metrics.json with one uninterrupted run of the same spec in its own cache.
module CrashResumeTests

open System
open System.Collections.Generic
open System.Diagnostics
open System.IO
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open System.Threading
open System.Threading.Tasks
open Expecto
open Experiments

/// Small enough for CI, large enough that each kill point falls inside its phase: training (2,000 images, 2 epochs)
/// reports every 50 batches, smooth_grad takes 3 calls of at most 50 inputs, and every progress line is printed
/// (ATTRIBUTION_PROGRESS_INTERVAL=0), so each phase shows a line below 100% however fast the machine is.
let private specText = """name: crash
seed: 11
device: cpu
data:
  dataset: fashion_mnist
  train_limit: 3200
  explain: 120
model:
  architecture: fashion_cnn
  epochs: 2
explain:
  targets: [ground_truth, predicted]
  output: probability
methods:
  - method: saliency
  - method: smooth_grad
    samples: 32
  - method: integrated_gradients
    steps: 8
metrics:
  - metric: negative_perturbation
    fractions: [0.1, 0.3, 0.5, 0.7, 0.9]
  - metric: sensitivity_n
    masks: 8
    points: 3
report:
  heatmap_inputs: 3
"""

/// The plan of the spec, for the cache paths of its steps (the CLI compiles the same plan: `--output` is not hashed).
let private plan =
    lazy
        (match Yaml.parseText "spec.yaml" specText with
         | Ok spec -> Plan.compile spec (Execute.dataHash spec)
         | Error errors -> failwith (SpecError.formatAll errors))

let private stepHash (name: string) =
    match plan.Force().Steps |> List.tryFind (fun s -> s.Name = name) with
    | Some step -> step.Hash
    | None -> failwith $"the plan has no step '{name}'"

/// The CLI built into this folder: the test project references src/Experiments.FSharp, so attribution.dll, its
/// deps.json and runtimeconfig.json are copied here, and the deps.json resolves TorchSharp's natives to this folder's
/// runtimes/linux-x64/native, the copies the build patched (Directory.Build.targets).
let private cli = Path.Combine(AppContext.BaseDirectory, "attribution.dll")

/// The `dotnet` host of the runtime running these tests: <root>/shared/Microsoft.NETCore.App/<version>/ -> <root>/dotnet.
let private dotnetHost =
    let runtime = Path.GetDirectoryName(typeof<obj>.Assembly.Location) |> Option.ofObj |> Option.defaultValue ""
    let host = Path.GetFullPath(Path.Combine(runtime, "..", "..", "..", "dotnet"))
    if File.Exists host then host else "dotnet"

/// A hung child must not hang the suite: past this it is killed and its test fails.
let private childLimit = TimeSpan.FromMinutes 6.0

/// A scenario's folders: the spec and working directory, its own cache, and the folder the run folder goes under.
type private Scenario =
    { Root: string
      Cache: string
      Output: string }
    member s.RunFolder = Path.Combine(s.Output, "crash", RunFolder.LatestName)
    member s.Artefact (kind: string) (hash: string) (extension: string) = Path.Combine(s.Cache, kind, hash + extension)
    member s.Parts (hash: string) =
        let folder = Path.Combine(s.Cache, "attributions")
        if Directory.Exists folder then Directory.GetFiles(folder, hash + ".part-*") else [||]

let private scenario (name: string) =
    let root = TestFiles.freshDir $"crash-{name}"
    File.WriteAllText(Path.Combine(root, "spec.yaml"), specText)
    { Root = root; Cache = Path.Combine(root, "cache"); Output = Path.Combine(root, "runs") }

type private Outcome =
    { ExitCode: int
      Stdout: string
      Stderr: string list
      /// The line on which the child was killed, if it was.
      KilledAt: string option
      TimedOut: bool }
    /// The end of stderr without the plan's step lines, for failure messages.
    member o.Tail =
        let lines = o.Stderr |> List.filter (fun l -> not (Regex.IsMatch(l, "^  [0-9a-f]{8}  ")))
        lines |> List.skip (max 0 (lines.Length - 25)) |> String.concat "\n"

/// `attribution run spec.yaml --output <scenario>/runs` with ATTRIBUTION_CACHE = <scenario>/cache, in the scenario's
/// folder. stderr is read line by line; on the first line for which `killWhen` holds the child gets SIGKILL
/// (Process.Kill on Linux), and reading goes on until the pipe closes.
let private runCli (s: Scenario) (killWhen: string -> bool) : Outcome =
    let info = ProcessStartInfo(dotnetHost, WorkingDirectory = s.Root, UseShellExecute = false,
                                RedirectStandardError = true, RedirectStandardOutput = true)
    for a in [ "exec"; cli; "run"; "spec.yaml"; "--output"; s.Output ] do info.ArgumentList.Add a
    info.Environment.["ATTRIBUTION_CACHE"] <- s.Cache
    // One intra-op thread in every child. The numbers depend on libtorch's thread count (this spec's model reached
    // 75.01% test accuracy with 1 thread, 74.81% with 2), so all runs compared must use the same count; and two
    // children at once on 2 cores would oversubscribe them with spinning OpenMP threads (3 min for the pair under
    // load with 2 threads each).
    info.Environment.["OMP_NUM_THREADS"] <- "1"
    info.Environment.["ATTRIBUTION_PROGRESS_INTERVAL"] <- "0"
    use p =
        match Process.Start info with
        | null -> failwith $"{dotnetHost} exec {cli} did not start"
        | p -> p
    let stdout = Text.StringBuilder()
    p.OutputDataReceived.Add(fun e -> match e.Data with null -> () | line -> lock stdout (fun () -> stdout.AppendLine line |> ignore))
    p.BeginOutputReadLine()
    let timedOut = ref false
    use cancel = new CancellationTokenSource()
    Task.Delay(childLimit, cancel.Token).ContinueWith((fun (_: Task) -> timedOut.Value <- true; (try p.Kill() with _ -> ())),
                                                       TaskContinuationOptions.OnlyOnRanToCompletion) |> ignore
    let stderr = List<string>()
    let mutable killedAt = None
    let mutable reading = true
    while reading do
        match p.StandardError.ReadLine() with
        | null -> reading <- false
        | line ->
            stderr.Add line
            if killedAt.IsNone && killWhen line then
                p.Kill()
                killedAt <- Some line
    p.WaitForExit()
    cancel.Cancel()
    { ExitCode = p.ExitCode; Stdout = lock stdout (fun () -> stdout.ToString()); Stderr = List.ofSeq stderr
      KilledAt = killedAt; TimedOut = timedOut.Value }

let private toCompletion (s: Scenario) = runCli s (fun _ -> false)

/// A progress line of `step` (Progress.report: "[   12.3s] train model    40.0%  ...", the name padded to 40 characters
/// and possibly holding spaces): its percentage.
let private progressOf (step: string) (line: string) =
    let m = Regex.Match(line, @"^\[\s*[0-9.]+s\] (.+?)\s+([0-9.]+)%  ")
    if m.Success && m.Groups.[1].Value = step then Some(float m.Groups.[2].Value) else None

/// The first progress line of `step` below 100%: the step has begun and not finished.
let private inside (step: string) (line: string) =
    match progressOf step line with
    | Some percent -> percent < 100.0
    | None -> false

let private completed (what: string) (o: Outcome) =
    Expect.isFalse o.TimedOut $"{what}: the child ran past {childLimit} and was killed"
    Expect.equal o.ExitCode 0 $"{what}: exit code 0\n{o.Tail}"
    Expect.stringContains o.Stdout "report written to" $"{what}: the report was written"

/// The child died of the SIGKILL sent on its phase's line (128 + 9), and had written no run folder.
let private killed (s: Scenario) (phase: string) (o: Outcome) =
    Expect.isFalse o.TimedOut $"killed during {phase}: the child ran past {childLimit}"
    Expect.isSome o.KilledAt $"killed during {phase}: the phase's progress line never came, so the child was not killed (it exited {o.ExitCode})\n{o.Tail}"
    Expect.equal o.ExitCode 137 $"killed during {phase}: the child died of SIGKILL (exit 128 + 9)\n{o.Tail}"
    Expect.isFalse (o.Stdout.Contains "report written to") $"killed during {phase}: no report announced"
    Expect.isFalse (Directory.Exists s.RunFolder) $"killed during {phase}: no run folder {s.RunFolder}"

/// metrics.json as (path, value) leaves, without what legitimately differs between two runs of one spec:
/// - Model.TrainingSeconds: the wall time of training (a run that loads the model reports the training run's);
/// - Timings[].Seconds: the wall time of each attribution step (a resumed step adds the seconds its stored parts cost);
/// - Timings[].Cached: whether this run computed the step or loaded it (a resumed run loads what the killed one stored).
/// Everything else must be equal: the model's accuracy, losses and size, the explained indices, every curve, AUC and
/// scalar of every metric, the log-Sobolev estimates, and which methods and targets were timed on how many inputs.
let private comparable (file: string) =
    let excluded (path: string) =
        path = "Model.TrainingSeconds" || Regex.IsMatch(path, @"^Timings\[\d+\]\.(Seconds|Cached)$")
    let rec leaves (path: string) (node: JsonNode | null) =
        match node with
        | null -> [ path, "null" ]
        | :? JsonObject as o -> [ for KeyValue(k, v) in o do yield! leaves (if path = "" then k else $"{path}.{k}") v ]
        | :? JsonArray as a -> [ for i in 0 .. a.Count - 1 do yield! leaves $"{path}[{i}]" a.[i] ]
        | value -> [ path, value.ToJsonString() ]
    leaves "" (JsonNode.Parse(File.ReadAllText file)) |> List.filter (fst >> excluded >> not)

/// The uninterrupted run, computed once for the whole list in its own cache.
let private reference =
    lazy
        (let s = scenario "reference"
         let o = toCompletion s
         completed "uninterrupted run" o
         let leaves = comparable (Path.Combine(s.RunFolder, "metrics.json"))
         // Every kind of number the comparisons rest on is there.
         let paths = leaves |> List.map fst |> String.concat "\n"
         for path in [ "Model.TestAccuracy"; "NegativePerturbation[2].Result.Curves[2].Auc"; "Metrics[2].Scalars[0].Value"; "ExplainedIndices[119]" ] do
             Expect.stringContains paths path $"the uninterrupted run's metrics.json holds {path}"
         Directory.Delete(s.Root, true)
         leaves)

let private sameAsReference (s: Scenario) (what: string) =
    let file = Path.Combine(s.RunFolder, "metrics.json")
    Expect.isTrue (File.Exists file) $"{what}: {file} written"
    let expected, actual = reference.Force(), comparable file
    // Values as JSON text, not parsed numbers: bit-identical on the CPU, as the README promises for one spec and seed.
    let found = Map.ofList actual
    let differences =
        [ for path, value in expected do
            match found.TryFind path with
            | Some v when v = value -> ()
            | Some v -> yield $"{path}: {value} uninterrupted, {v} here"
            | None -> yield $"{path}: {value} uninterrupted, absent here"
          let known = set (List.map fst expected)
          for path, v in actual do
              if not (known.Contains path) then yield $"{path}: absent uninterrupted, {v} here" ]
    let shown = differences |> List.truncate 12 |> String.concat "\n"
    Expect.isEmpty differences
        $"{what}: metrics.json equals the uninterrupted run's (timings and cache flags aside); {differences.Length} values differ:\n{shown}"

let private says (o: Outcome) (text: string) = o.Stderr |> List.exists (fun l -> l.Contains text)

[<Tests>]
let tests =
    testSequenced <| testList "crash and resume: the CLI as a child process, killed with SIGKILL" [
        test "killed during training, the run starts again and its metrics.json equals an uninterrupted run's" {
            let s = scenario "training"
            let model = plan.Force().ModelHash
            let first = runCli s (inside "train model")
            killed s "training" first
            Expect.isFalse (File.Exists(s.Artefact "models" model ".safetensors")) "the model was not stored: training had not finished"
            Expect.isFalse (Directory.Exists(Path.Combine(s.Cache, "attributions"))) "nothing was attributed"
            let second = toCompletion s
            completed "the run after the kill" second
            Expect.isTrue (says second "model: trained in") "the model was trained again (an unfinished training stores nothing)"
            sameAsReference s "after a kill during training"
            Directory.Delete(s.Root, true)
        }

        test "killed during attribution after a call was stored as a part, the run resumes from it and its metrics.json equals an uninterrupted run's" {
            let s = scenario "attribution"
            let step = "attribute/smooth_grad/ground_truth"
            let hash = stepHash step
            // A line below 100% comes after a call's part is written and before the next call starts.
            let first = runCli s (inside step)
            killed s "attribution" first
            let parts = s.Parts hash
            Expect.isNonEmpty parts $"at least one call of {step} was stored as a part"
            Expect.isLessThan parts.Length 4 $"not every call of {step} was stored (4 calls of 50 inputs)"
            Expect.isFalse (File.Exists(s.Artefact "attributions" hash ".safetensors")) $"{step} itself was not stored: it had not finished"
            Expect.isTrue (File.Exists(s.Artefact "models" (plan.Force().ModelHash) ".safetensors")) "the model was stored before"
            let second = toCompletion s
            completed "the run after the kill" second
            Expect.isTrue (says second "model: cached") "the resumed run loaded the model"
            Expect.isTrue (says second "attribute/saliency/ground_truth: cached") "and the attribution step stored before the kill"
            Expect.isTrue (File.Exists(s.Artefact "attributions" hash ".safetensors")) $"{step} is stored now"
            Expect.isEmpty (s.Parts hash) "its parts are gone once the step is stored"
            sameAsReference s "after a kill during attribution"
            Directory.Delete(s.Root, true)
        }

        test "killed during a metric, the run resumes with the stored maps and its metrics.json equals an uninterrupted run's" {
            let s = scenario "metric"
            let step = "sensitivity_n/saliency"
            let hash = stepHash step
            // The metric's first line ("sensitivity_n/saliency: 120 inputs") is printed when its computation begins.
            let first = runCli s (fun line -> Regex.IsMatch(line, @"^\[\s*[0-9.]+s\] " + Regex.Escape step + ": "))
            killed s "a metric" first
            Expect.isFalse (File.Exists(s.Artefact "metrics" hash ".json")) $"{step} was not stored: it had not finished"
            let attributions = plan.Force().Steps |> List.filter (fun st -> st.Name.StartsWith "attribute/")
            for st in attributions do
                Expect.isTrue (File.Exists(s.Artefact "attributions" st.Hash ".safetensors")) $"{st.Name} was stored before the metric began"
            let second = toCompletion s
            completed "the run after the kill" second
            for st in attributions do
                Expect.isTrue (says second $"{st.Name}: cached") $"the resumed run loaded {st.Name}"
            Expect.isFalse (says second "negative_perturbation/saliency: masking") "and the metric stored before the kill"
            Expect.isTrue (says second $"{step}: ") $"{step} was computed"
            Expect.isTrue (File.Exists(s.Artefact "metrics" hash ".json")) $"{step} is stored now"
            sameAsReference s "after a kill during a metric"
            Directory.Delete(s.Root, true)
        }

        // The intended guarantee: two runs of one spec on one cache and one output folder both finish, and the run
        // folder then holds the numbers of an uninterrupted run. Both may compute the same step at once (each writes
        // its artefacts atomically, and the contents are identical); each builds its run folder beside the final one
        // and swaps it in, so the folder left is one whole run's. With one output folder only the last writer's
        // metrics.json survives: each process's own numbers are the ones in that folder or in the shared cache.
        test "two processes on one spec, one cache and one output folder both finish, and the run folder holds an uninterrupted run's numbers" {
            let s = scenario "concurrent"
            let both = [| Task.Run(fun () -> toCompletion s); Task.Run(fun () -> toCompletion s) |]
            Task.WaitAll(both |> Array.map (fun t -> t :> Task))
            for i, t in Array.indexed both do
                completed $"process {i + 1} of 2" t.Result
                Expect.stringContains t.Result.Stdout (Path.Combine(s.Output, "crash") + string Path.DirectorySeparatorChar) $"process {i + 1} wrote a run folder of the spec"
            sameAsReference s "two concurrent runs"
            let beside = Directory.GetDirectories(s.Output) |> Array.map (fun d -> string (Path.GetFileName d)) |> Array.sort
            Expect.equal beside [| "crash" |] "nothing is left beside the folder of the spec's runs"
            let runs = Directory.GetDirectories(RunFolder.target s.Output "crash") |> Array.filter (fun d -> (FileInfo d).LinkTarget = null)
                       |> Array.map (fun d -> string (Path.GetFileName d))
            Expect.equal runs.Length 2 $"each process kept its own run folder, no staging folder left: {runs}"
            for st in plan.Force().Steps |> List.filter (fun st -> st.Name.StartsWith "attribute/") do
                Expect.isEmpty (s.Parts st.Hash) $"no part of {st.Name} is left in the cache"
            Directory.Delete(s.Root, true)
        }
    ]
