/// A finished run as `attribution export` reads it: the run folder (its marker, its resolved spec.yaml, plan.txt and
/// inputs.csv), the plan its spec compiles to now, which must be the plan the run wrote (else the cache holds other
/// artefacts than the run's), and the cache artefacts of the plan's steps, which must all be there.
module Experiments.ExportSource

open System.IO
open System.Text.Json
open Experiments

/// A run folder whose spec, plan and explained inputs have been read and checked.
type FinishedRun =
    { Folder: string
      Plan: Plan.Plan
      /// The explained inputs as the run recorded them (InputRecord).
      Inputs: InputRecord.ExplainedInput[]
      /// environment.json's device and commit, as written ("unknown" when the file lacks them).
      Device: string
      Commit: string }

let private fail (message: string) = raise (InputProblem message)

/// How to bring a run and the cache back in line.
let private rerun (folder: string) =
    let specFile = Path.Combine(folder, "spec.yaml")
    $"re-run its spec (`attribution run {specFile}`; cached steps are read, not recomputed) and export again"

let private environmentField (folder: string) (name: string) =
    try
        use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "environment.json")))
        match doc.RootElement.TryGetProperty name with
        | true, v -> v.ToString()
        | _ -> "unknown"
    with _ -> "unknown"

/// The plan `spec` compiles to now against the plan the run wrote: None when they agree, else which step differs.
let private planDifference (plan: Plan.Plan) (written: string) =
    if Plan.describe plan + "\n" = written then None
    else
        let lines = written.Split '\n'
        match plan.Steps |> List.tryFind (fun s -> not (lines |> Array.exists (fun l -> l.Trim() = $"{Hashing.short s.Hash}  {s.Name}" || l.Trim().StartsWith($"{Hashing.short s.Hash}  {s.Name}  ")))) with
        | Some step -> Some $"step {step.Name} is now {Hashing.short step.Hash}, which plan.txt does not list"
        | None -> Some "plan.txt differs from the plan the spec compiles to now"

/// Reads and checks the run folder `folder`; every problem is an InputProblem saying what to do.
let openRun (folder: string) : FinishedRun =
    let given = Path.GetFullPath(RunFolder.expandHome folder)
    // the folder of a spec's runs (runs/NAME) stands for its latest run; a link (runs/NAME/latest) for the run it names
    let folder =
        let latest = Path.Combine(given, RunFolder.LatestName)
        let chosen = if (RunFolder.readRunsMarker given).IsSome && Path.Exists latest then latest else given
        match Directory.ResolveLinkTarget(chosen, true) with
        | null -> chosen
        | resolved -> resolved.FullName
    if folder <> given then Progress.say $"export: {given} is {folder}"
    if File.Exists folder then fail $"{folder} is a file; RUN is a run folder written by `attribution run` (runs/NAME/RUN-ID, or runs/NAME for the latest)"
    if not (Directory.Exists folder) then fail $"{folder}: no such folder; RUN is a run folder written by `attribution run` (runs/NAME/RUN-ID, or runs/NAME for the latest)"
    if File.Exists(Path.Combine(folder, ExportFolder.MarkerName)) then fail $"{folder} is an export, not a run folder; RUN is a run folder written by `attribution run` (runs/NAME/RUN-ID, or runs/NAME for the latest)"
    if not (File.Exists(Path.Combine(folder, RunFolder.MarkerName))) then
        fail $"{folder} is not a run folder (it has no {RunFolder.MarkerName} marker); RUN is a run folder written by `attribution run` (runs/NAME/RUN-ID, or runs/NAME for the latest)"
    let file name = Path.Combine(folder, name)
    match [ "spec.yaml"; "plan.txt"; "metrics.json"; InputRecord.FileName ] |> List.filter (file >> File.Exists >> not) with
    | [] -> ()
    | missing ->
        fail $"""{folder} lacks {String.concat ", " missing} (a run folder of an older version, or an unfinished one): {rerun folder}"""
    let spec =
        match Validate.text (file "spec.yaml") (File.ReadAllText(file "spec.yaml")) with
        | Ok spec -> spec
        | Error errors -> fail $"the run's spec.yaml does not read back:\n{SpecError.formatAll errors}"
    let plan = Plan.compile spec (Execute.dataHash spec)
    match planDifference plan (File.ReadAllText(file "plan.txt")) with
    | Some difference ->
        fail ($"{folder}: {difference}: the data, a weights file or the toolkit's cache keys changed since the run, so the cache "
              + $"holds other artefacts than the run's; {rerun folder}")
    | None -> ()
    let inputs =
        match InputRecord.read folder with
        | Ok rows -> rows
        | Error e -> fail $"{e}: {rerun folder}"
    { Folder = folder; Plan = plan; Inputs = inputs; Device = environmentField folder "Device"; Commit = environmentField folder "Commit" }

/// The cache file of a step's artefact; None for a step the export does not need from the cache (a covariance is re-estimated when missing)
/// or a model that is not trained (the user's file, or a seeded initialisation).
let artefactOf (plan: Plan.Plan) (step: Plan.Step) =
    match step.Kind with
    | Plan.ProvideModel when plan.Spec.Model.Weights.IsNone && plan.Spec.Model.Epochs > 0 && (match plan.Spec.Model.Architecture with TorchScript _ -> false | _ -> true) ->
        Some(Artefacts.path "models" step.Hash ".safetensors")
    | Plan.ProvideModel | Plan.EstimateCovariance _ | Plan.EstimateStructuredCovariance _ -> None
    | Plan.Attribute _ -> Some(Artefacts.path "attributions" step.Hash ".safetensors")
    | Plan.EvaluateNegativePerturbation _ | Plan.EvaluateRankAgreement | Plan.EvaluateMethodMetric _ -> Some(Artefacts.path "metrics" step.Hash ".json")

/// Fails, naming them, when artefacts of the run's steps are not in the cache.
let requireArtefacts (run: FinishedRun) =
    let missing =
        [ for step in run.Plan.Steps do
            match artefactOf run.Plan step with
            | Some file when not (File.Exists file) -> yield $"{step.Name} ({Path.GetRelativePath(Artefacts.root (), file)})"
            | _ -> () ]
    if not missing.IsEmpty then
        fail ($"""the cache {Artefacts.root ()} lacks artefacts of this run: {String.concat ", " missing}. The cache was cleared, or """
              + $"ATTRIBUTION_CACHE names another one than the run's: {rerun run.Folder}")
