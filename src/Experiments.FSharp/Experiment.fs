/// Specs as code: the toolkit from F# (a script, a notebook, a program), one call per stage. A sweep is ordinary F#:
///   [ for s in [ 0.05; 0.1; 0.2 ] -> Dsl.smoothGrad |> Dsl.withSampler (IsotropicGaussian s) |> Dsl.withId $"sg_{s}" ]
/// Every function validates first (the same rules as `attribution validate`) and raises InvalidSpec listing every error.
module Experiments.Experiment

open System
open Experiments

/// A spec that breaks rules; the message lists every error.
exception InvalidSpec of errors: SpecError list with
    override e.Message = "the spec is not valid:\n" + SpecError.formatAll e.errors

/// Every error of a spec (the rules of its parameters and of their composition, and the files it names).
let validate (spec: Spec) : Result<Spec, SpecError list> =
    match Validate.spec spec @ Validate.files spec with
    | [] -> Ok spec
    | errors -> Error errors

let private valid (spec: Spec) =
    match validate spec with
    | Ok s -> s
    | Error errors -> raise (InvalidSpec errors)

/// The plan of a spec: its steps, their content hashes and dependencies (`attribution plan`).
let plan (spec: Spec) : Plan.Plan =
    let spec = valid spec
    Plan.compile spec (Execute.dataHash spec)

/// Runs a spec on its device, every step from the cache when it is there ($ATTRIBUTION_CACHE, else .cache): the results
/// and the maps, for the caller to read or to pass to `report`.
let execute (spec: Spec) : Execute.RunOutput =
    let p = plan spec
    Artefacts.ensureRoot ()
    let device = Attribution.Runtime.TorchRuntime.Resolve(Execute.deviceRequest spec.Device)
    Execute.run p device

/// Runs a spec and returns its numbers (what metrics.json holds).
let run (spec: Spec) : Results.RunResult = (execute spec).Result

/// Writes the run folder of an executed spec (report.md, metrics.json and .csv, heatmaps, curves) as a new run, adds its
/// numbers to `{output}/results.sqlite`, and returns the run's folder `{output}/{name}/{run id}` (README: run folders).
let report (spec: Spec) (output: Execute.RunOutput) : string =
    let started = DateTime.UtcNow
    let p = plan spec
    let device = Attribution.Runtime.TorchRuntime.Resolve(Execute.deviceRequest spec.Device)
    RunFolder.cleanLeftovers spec.Output spec.Name
    RunRecording.publish p output (RunEnvironment.capture device started) |> fst

/// Runs a spec and writes its run folder, as `attribution run` does: the results and the folder's path.
let runAndReport (spec: Spec) : Results.RunResult * string =
    let output = execute spec
    output.Result, report spec output
