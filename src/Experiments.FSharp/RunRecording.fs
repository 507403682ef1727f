/// A finished run made permanent: its folder written (Report, RunFolder) and its numbers added to the results store,
/// under one run id. `attribution run` and the F# API (Experiment.report) both end a run here.
module Experiments.RunRecording

open System
open System.IO
open Experiments

/// Writes the run folder and records the run; returns the run's folder `{output}/{name}/{run id}` and the run id.
let publish (plan: Plan.Plan) (output: Running.RunOutput) (env: RunEnvironment.EnvironmentRecord) =
    let spec = plan.Spec
    let specText = Yaml.render spec
    let runId = RunFolder.newRunId ()
    let folder = Report.writeRun plan specText output env runId
    let record =
        { ResultsStore.RunId = runId; ResultsStore.Spec = spec.Name; ResultsStore.SpecHash = Hashing.hash [ specText ]
          ResultsStore.Commit = env.Commit; ResultsStore.Dirty = env.Dirty; ResultsStore.Dataset = Hashing.display spec.Data.Dataset
          ResultsStore.Model = Hashing.display spec.Model.Architecture; ResultsStore.Seed = spec.Seed; ResultsStore.Explained = output.Result.Explained
          ResultsStore.Device = env.Device; ResultsStore.StartedUtc = env.StartedUtc
          ResultsStore.FinishedUtc = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"); ResultsStore.Folder = folder }
    let parameters (id: string) =
        match spec.Methods |> List.tryFind (fun m -> m.Id = id) with
        | Some m -> Hashing.canonical m.Kind
        | None -> ""
    // runs of the previous layout were moved in by RunFolder.publish; their records follow
    ResultsStore.relocate spec.Output (RunFolder.earlierHistory spec.Output spec.Name) (RunFolder.target spec.Output spec.Name)
    ResultsStore.add spec.Output record (ResultsStore.rowsOfCsv (Report.metricsCsv output.Result) parameters)
    folder, runId
