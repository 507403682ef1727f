/// `attribution export RUN --to FOLDER`: a finished run written out so that a reader outside .NET (Python with
/// safetensors and json) can check every number: the explained inputs and what the data and model say of them, the
/// class covariances the samplers drew from, each method's maps with its noise seed, and each metric's per-input values
/// beside the reported value they reduce to; manifest.json describes every file, README.md says how to load it.
module Experiments.Export

open System
open System.IO
open System.Text.Json
open TorchSharp
open Attribution.IO
open Experiments
open Experiments.ExportManifest

let private refuse (message: string) = SpecProblem("--to", message)

/// metrics.json of the run, read back (the values the per-input ones summarise).
let private summaryOf (run: ExportSource.FinishedRun) : Results.RunResult =
    let file = Path.Combine(run.Folder, "metrics.json")
    let options = JsonSerializerOptions(NumberHandling = Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals)
    try
        match JsonSerializer.Deserialize<Results.RunResult>(File.ReadAllText file, options) with
        | null -> raise (InputProblem $"{file} holds no result")
        | r -> r
    with :? JsonException as e -> raise (InputProblem $"{file} is not a run's metrics.json ({e.Message}); re-run its spec and export again")

/// The run folder's own files, copied as they are.
let private copyRunFiles (dir: string) (run: ExportSource.FinishedRun) =
    [ "spec.yaml", "yaml", "The spec as the run ran it (overrides resolved); `attribution run spec.yaml` repeats the run."
      "plan.txt", "text", "The run's plan: its steps and their content hashes (the cache keys of its artefacts; metadata `step_hash` of the files here)."
      "metrics.json", "json", "The run's reported values, as the run folder holds them: what the per-input values of this export summarise."
      "environment.json", "json", "Where the run ran: commit, dirty flag, versions, device, threads." ]
    |> List.filter (fun (name, _, _) -> File.Exists(Path.Combine(run.Folder, name)))
    |> List.map (fun (name, format, description) ->
        AtomicFile.WriteAllBytes(Path.Combine(dir, name), File.ReadAllBytes(Path.Combine(run.Folder, name)))
        file name format description)

/// Writes the export of the run folder `runFolder` into `target`; returns the export's full path.
let write (runFolder: string) (target: string) =
    let target = Path.GetFullPath(RunFolder.expandHome target)
    match ExportFolder.problem target with
    | Some message -> raise (refuse message)
    | None -> ()
    let run = ExportSource.openRun runFolder
    let inside = run.Folder.TrimEnd(Path.DirectorySeparatorChar) + string Path.DirectorySeparatorChar
    if target = run.Folder || target.StartsWith inside then
        raise (refuse $"{target} is inside the run folder {run.Folder}, which holds what its run wrote and nothing else: export elsewhere")
    ExportSource.requireArtefacts run
    let summary = summaryOf run
    let spec = run.Plan.Spec
    Progress.say $"export: {run.Folder} -> {target}"
    let domain = DataSources.load spec
    let network =
        match Execute.loadNetwork run.Plan domain torch.CPU with
        | Some network -> network
        | None -> raise (InputProblem $"the trained model of {run.Folder} is not in the cache {Artefacts.root ()}: re-run its spec and export again")
    ExportFolder.publish target run.Folder refuse (fun dir ->
        Directory.CreateDirectory(Path.Combine(dir, "maps")) |> ignore
        Directory.CreateDirectory(Path.Combine(dir, "metrics")) |> ignore
        Directory.CreateDirectory(Path.Combine(dir, "covariance")) |> ignore
        let inputs = ExportInputs.write dir run domain network
        let covariances = ExportInputs.writeCovariances dir run domain network
        let maps = ExportResults.writeMaps dir run summary
        let metrics, without = ExportResults.writeMetrics dir run summary
        let copied = copyRunFiles dir run
        // Folders nothing was written to are left out (a spec without covariance samplers).
        for sub in [ "maps"; "metrics"; "covariance" ] do
            let path = Path.Combine(dir, sub)
            if Seq.isEmpty (Directory.EnumerateFileSystemEntries path) then Directory.Delete path
        let manifest =
            { Run =
                [ "name", Text spec.Name; "folder", Text run.Folder; "seed", Integer(int64 spec.Seed); "device", Text run.Device; "commit", Text run.Commit
                  "targets", Texts(spec.Explain.Targets |> List.map Running.targetName)
                  "output", Text(match spec.Explain.Output with Probability -> "softmax probability of the target class" | Logit -> "logit of the target class")
                  "data_hash", Text run.Plan.DataHash; "model_hash", Text run.Plan.ModelHash; "cache", Text(Artefacts.root ())
                  "exported_utc", Text(DateTime.UtcNow.ToString "yyyy-MM-ddTHH:mm:ssZ") ]
              Explained = run.Inputs.Length
              Classes = domain.ClassNames
              Files =
                inputs @ covariances @ maps @ metrics @ copied
                @ [ file "manifest.json" "json" "This description of every file."; file "README.md" "text" "How to load and check the export in Python." ]
              WithoutPerInput = without }
        AtomicFile.WriteAllText(Path.Combine(dir, "manifest.json"), ExportManifest.toJson manifest)
        AtomicFile.WriteAllText(Path.Combine(dir, "README.md"), ExportReadme.render manifest))
