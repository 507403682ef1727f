/// `attribution slurm`: writes (and submits) the Slurm jobs of a spec's run (SlurmScripts).
module Experiments.SlurmCommand

open System
open System.IO
open Argu
open Experiments
open Experiments.CliArgs
open Experiments.SpecFiles
open Experiments.CliOutcome

/// `attribution slurm`: the spec's run as chained Slurm jobs (SlurmScripts), written into a folder and, with
/// --submit, submitted. Everything is checked before a file is written: sbatch on PATH, one spec, the numbers.
let run (args: ParseResults<SlurmArgs>) =
    let paths = args.GetResult(SlurmArgs.Specs, defaultValue = [])
    let shards = args.GetResult SlurmArgs.Shards
    let cpus = args.GetResult(Cpus_Per_Task, 1)
    let numberErrors =
        [ if shards < 1 || shards > Sharding.MaxShards then yield $"--shards {shards}: must be between 1 and {Sharding.MaxShards}"
          if cpus < 1 || cpus > 1024 then yield $"--cpus-per-task {cpus}: must be between 1 and 1024"
          match args.TryGetResult Gpus_Per_Task with
          | Some g when g < 1 || g > 64 -> yield $"--gpus-per-task {g}: must be between 1 and 64"
          | _ -> () ]
    match SlurmScripts.onPath "sbatch" with
    | None -> report [ "slurm: sbatch is not on PATH, so this machine cannot submit Slurm jobs: run this on the cluster's login node (or install Slurm, e.g. apt-get install slurm-client)" ]
    | Some _ ->
        match unknownFlags paths @ numberErrors with
        | [] ->
            match load paths |> Result.bind (fun docs -> selectSpecs (args.GetResults SlurmArgs.Only) docs |> Result.mapError List.singleton) with
            | Error errors -> report errors
            | Ok [ doc ] ->
                match runFolderErrors [ doc ] with
                | [] ->
                    guarded (Some doc) (fun () ->
                        let folder = Path.GetFullPath(args.GetResult(SlurmArgs.To, Path.Combine("slurm", doc.Spec.Name)))
                        let request =
                            { SlurmScripts.Shards = shards; SlurmScripts.Partition = args.TryGetResult Partition; SlurmScripts.Time = args.TryGetResult Time
                              SlurmScripts.GpusPerTask = args.TryGetResult Gpus_Per_Task; SlurmScripts.CpusPerTask = cpus; SlurmScripts.Memory = args.TryGetResult Mem
                              SlurmScripts.Extra = args.GetResults Sbatch |> List.map (fun l -> "#SBATCH " + l.Trim())
                              SlurmScripts.MetricWave = doc.Spec.Metrics |> List.exists MetricSteps.sharedAfterMaps }
                        let setting =
                            { SlurmScripts.Program = SlurmScripts.programCommand (); SlurmScripts.WorkingFolder = Directory.GetCurrentDirectory()
                              SlurmScripts.Cache = Path.GetFullPath(Artefacts.root ()); SlurmScripts.SpecFile = Path.Combine(folder, "spec.yaml")
                              SlurmScripts.SpecName = doc.Spec.Name; SlurmScripts.Folder = folder }
                        Directory.CreateDirectory(Path.Combine(folder, "logs")) |> ignore
                        // the spec frozen beside the scripts: editing the original later cannot split one run across two specs
                        Attribution.IO.AtomicFile.WriteAllText(setting.SpecFile, doc.Text)
                        for name, text in SlurmScripts.scripts request setting do Attribution.IO.AtomicFile.WriteAllText(Path.Combine(folder, name), text)
                        for script in [ "submit.sh"; "resume.sh" ] do
                            File.SetUnixFileMode(Path.Combine(folder, script), UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute ||| UnixFileMode.GroupRead ||| UnixFileMode.OtherRead)
                        if request.MetricWave then
                            printfn "%s: Slurm jobs written to %s (prepare.sbatch, shards.sbatch with %d tasks, maps.sbatch, assemble.sbatch; submit.sh chains them, with the shards twice: for the maps, then for the metrics that shards share out; resume.sh re-runs failed shards)" doc.Spec.Name folder shards
                        else
                            printfn "%s: Slurm jobs written to %s (prepare.sbatch, shards.sbatch with %d tasks, assemble.sbatch; submit.sh chains them, resume.sh re-runs failed shards)" doc.Spec.Name folder shards
                        if args.Contains Submit then
                            let start = Diagnostics.ProcessStartInfo("bash", [ Path.Combine(folder, "submit.sh") ], RedirectStandardOutput = true)
                            use p = match Diagnostics.Process.Start start with null -> failwith "bash did not start" | p -> p
                            let output = p.StandardOutput.ReadToEnd()
                            p.WaitForExit()
                            printf "%s" output
                            if p.ExitCode <> 0 then raise (InputProblem $"slurm: submit.sh failed (exit {p.ExitCode}); sbatch's message is above")
                        else printfn "submit with: bash %s" (Path.Combine(folder, "submit.sh")))
                | errors -> report errors
            | Ok docs -> report [ $"""slurm: {docs.Length} specs given ({docs |> List.map (fun d -> d.Spec.Name) |> String.concat ", "}); name one with --only""" ]
        | errors -> report errors

