/// The command line: `run`, `plan`, `validate`, `list`, `bench`, `cache` and `export`, each error a message and an exit code
/// (README). A bare spec path means `run`; no argument at all runs the embedded quickstart spec.
module Experiments.Cli

open System
open System.IO
open System.Reflection
open Argu
open Experiments
open Experiments.CliArgs

/// The spec shipped inside the program, run when no spec is named.
let embeddedQuickstart () =
    use stream =
        match Assembly.GetExecutingAssembly().GetManifestResourceStream "quickstart.yaml" with
        | null -> failwith "the embedded quickstart.yaml is missing from this build"
        | s -> s
    use reader = new StreamReader(stream)
    reader.ReadToEnd()

/// (source name, text) of each spec argument; the embedded quickstart when there is none.
/// The specs of a file: YAML documents separated by a line `---` (a file may hold several specs, e.g. one per
/// architecture). Each document keeps its place: the other documents' lines are blanked, so errors keep the file's
/// line numbers. A file without a separator is one document.
let documents (text: string) : string list =
    let lines = text.Replace("\r\n", "\n").Split '\n'
    let separators = lines |> Array.indexed |> Array.filter (fun (_, l) -> l.TrimEnd() = "---") |> Array.map fst
    if separators.Length = 0 then [ text ]
    else
        let bounds = Array.append (Array.append [| -1 |] separators) [| lines.Length |] |> Array.pairwise
        let isContent (l: string) = let t = l.Trim() in t <> "" && not (t.StartsWith "#")
        let docs =
            [ for start, stop in bounds do
                if lines.[start + 1 .. stop - 1] |> Array.exists isContent then
                    yield lines |> Array.mapi (fun i l -> if i > start && i < stop then l else "") |> String.concat "\n" ]
        if docs.IsEmpty then [ text ] else docs

/// The spec at the paper's scale (`run --full`): named NAME-full, every test input (or the full section's
/// `explain`), the whole training set, the full section's `epochs` where it gives them.
let atFullScale (spec: Spec) =
    { spec with
        Name = spec.Name + "-full"
        Data = { spec.Data with Explain = defaultArg spec.Full.Explain Int32.MaxValue; TrainLimit = None }
        Model = { spec.Model with Epochs = defaultArg spec.Full.Epochs spec.Model.Epochs } }

/// One spec document as read: where it came from, its text (other documents blanked), its tree and its value.
type Loaded = { Source: string; Text: string; Node: Node; Spec: Spec }

/// Later documents of one file that repeat an earlier document's name: both would write the same run folder.
let private duplicateNames (docs: Loaded list) =
    docs
    |> List.groupBy (fun d -> d.Source)
    |> List.collect (fun (_, inFile) ->
        inFile
        |> List.indexed
        |> List.choose (fun (i, d) ->
            inFile
            |> List.take i
            |> List.tryFind (fun e -> e.Spec.Name = d.Spec.Name)
            |> Option.map (fun first ->
                let at = FieldPath.locate first.Node [ Choice1Of2 "name" ]
                Validate.located d.Source d.Node
                    [ SpecError.make SpecError.FSharpFile 0 0 "name" $"another document of this file has the same name (line {at.Line}); each writes the run folder of its name" (Some d.Spec.Name) [] ]))
        |> List.concat)

/// The composition errors of a spec read from `text`, located in it.
let compositionErrors (file: string) (text: string) (spec: Spec) =
    match Yaml.parseTree file text with
    | Ok node -> Validate.composition spec |> Validate.located file node
    | Error errors -> errors

/// Every document of every file: the specs, or every error found (formatted, in source order).
let private load (paths: string list) : Result<Loaded list, string list> =
    let read =
        match paths with
        | [] -> [ Ok("<embedded quickstart.yaml>", embeddedQuickstart ()) ]
        | _ -> [ for p in paths -> Yaml.readFile p |> Result.map (fun text -> p, text) ]
    let parsed =
        [ for r in read do
            match r with
            | Error errors -> yield Error errors
            | Ok(source, text) ->
                for doc in documents text do
                    yield
                        Validate.document source doc
                        |> Result.bind (fun (spec, node) ->
                            match Validate.files spec |> Validate.located source node with
                            | [] -> Ok { Source = source; Text = doc; Node = node; Spec = spec }
                            | errors -> Error errors) ]
    let docs = parsed |> List.choose (function Ok d -> Some d | Error _ -> None)
    match (parsed |> List.collect (function Error e -> e | Ok _ -> [])) @ duplicateNames docs with
    | [] -> Ok docs
    | errors -> Error [ SpecError.formatAll errors ]

/// The documents named in `only` (all when it is empty); an `only` name that no spec has is an error listing the
/// names there are.
let selectSpecs (only: string list) (docs: Loaded list) =
    let names = docs |> List.map (fun d -> d.Spec.Name)
    match only |> List.filter (fun n -> not (List.contains n names)) with
    | [] when only.IsEmpty -> Ok docs
    | [] -> Ok(docs |> List.filter (fun d -> List.contains d.Spec.Name only))
    | missing ->
        let quoted = missing |> List.map (sprintf "'%s'") |> String.concat ", "
        Error $"""--only {quoted}: no such spec; the specs given are {names |> String.concat ", "}"""

/// The command line's overrides, checked by the rules of the spec fields they replace.
let private overrides (args: ParseResults<RunArgs>) (doc: Loaded) : Result<Loaded, string list> =
    let spec = doc.Spec
    let spec =
        match args.TryGetResult RunArgs.Device with
        | Some Auto -> { spec with Device = Device.Auto }
        | Some Cpu -> { spec with Device = Device.Cpu }
        | Some Cuda -> { spec with Device = Device.Cuda }
        | None -> spec
    let spec = if args.Contains RunArgs.Full then atFullScale spec else spec
    let problems (flag: string) (p: Param<'a>) (value: 'a) =
        Param.issues p value |> List.map (fun i -> $"{flag} {Out.shown (p.Encode value)}: {i.Message}")
    let explain = args.TryGetResult RunArgs.Explain
    let output = args.TryGetResult RunArgs.Output
    let errors =
        (explain |> Option.map (problems "--explain" Catalogue.Data.explain) |> Option.defaultValue [])
        @ (output |> Option.map (problems "--output" Catalogue.Top.output) |> Option.defaultValue [])
    let spec = match explain with Some n -> { spec with Data = { spec.Data with Explain = n } } | None -> spec
    let spec = match output with Some o -> { spec with Output = o } | None -> spec
    if errors.IsEmpty then Ok { doc with Spec = spec } else Error errors

let private planOf (spec: Spec) = Plan.compile spec (Execute.dataHash spec)

/// A cluster job's part of a run: the prepare job, or one shard; the cache is all they write.
let private runPart (mode: Sharding.RunMode) (spec: Spec) =
    let device = Attribution.Runtime.TorchRuntime.Resolve(Execute.deviceRequest spec.Device)
    let plan = planOf spec
    match mode with
    | Sharding.PrepareOnly ->
        Execute.prepare plan device
        printfn "%s: prepared (model and covariances in %s); now run the shards" spec.Name (Artefacts.root ())
    | Sharding.ShardOf(index, count) ->
        let computed, stored = Execute.shard plan device index count
        printfn "%s: shard %d/%d done (%d calls computed, %d found stored) in %s" spec.Name index count computed stored (Artefacts.root ())
    | Sharding.Whole -> ()

let private runOne (spec: Spec) =
    let started = DateTime.UtcNow
    RunFolder.cleanLeftovers spec.Output spec.Name
    let device = Attribution.Runtime.TorchRuntime.Resolve(Execute.deviceRequest spec.Device)
    let plan = planOf spec
    eprintfn "%s" (Plan.describe plan)
    let output = Execute.run plan device
    let env = RunEnvironment.capture device started
    let folder, runId = RunRecording.publish plan output env
    printfn "%s: report written to %s (run %s in %s)" spec.Name (Path.Combine(folder, "report.md")) runId (ResultsStore.file spec.Output)

/// Stack traces of user errors are printed with --verbose only.
let mutable private verbose = false

/// Runs `action`; an error the user can cause prints one message and returns its exit code (README, "Exit codes"),
/// anything else is a bug: its stack trace and a request to report it, exit 70. `doc` locates spec problems.
let private guarded (doc: Loaded option) (action: unit -> unit) =
    let say (code: int) (message: string) (e: exn) =
        eprintfn "error: %s" message
        if verbose then eprintfn "%O" e
        code
    try
        action ()
        ExitCode.Ok
    with
    | SpecProblem(path, message) as e ->
        let located =
            match doc with
            | Some d when path <> "" -> Validate.located d.Source d.Node [ SpecError.make SpecError.FSharpFile 0 0 path message None [] ] |> List.head |> SpecError.format
            | _ when path <> "" -> $"{path}: {message}"
            | _ -> message
        say ExitCode.BadSpec located e
    | InputProblem message as e -> say ExitCode.BadInput message e
    | :? Attribution.Data.DataNotFoundException as e -> say ExitCode.BadInput e.Message e
    | :? FileNotFoundException as e -> say ExitCode.BadInput e.Message e
    | :? InvalidDataException as e -> say ExitCode.BadInput e.Message e   // a data file that is not what it should be
    | :? InvalidOperationException as e when e.Message.Contains Attribution.Runtime.TorchRuntime.LibTorchVariable -> say ExitCode.BadInput e.Message e
    | CacheProblem message as e -> say ExitCode.BadCache message e
    | DiskFull.DiskFull io as e ->
        say ExitCode.BadCache ($"no space left on the device ({io.Message}): free space, or point ATTRIBUTION_CACHE and --output at a larger disk; "
                               + "every step and call stored so far is kept, so the run resumes from there") e
    | :? OutOfMemoryException as e -> say ExitCode.BadInput "out of memory: the spec asks for more than this machine has (lower explain.batch_size, samples or explain)" e

/// Each spec's run folder must be free or the toolkit's own, and two specs of one command must not share one:
/// checked for all of them before any work starts.
let private runFolderErrors (docs: Loaded list) =
    let targets = docs |> List.map (fun d -> d, RunFolder.target d.Spec.Output d.Spec.Name)
    [ for i, (d, folder) in List.indexed targets do
        match targets |> List.take i |> List.tryFind (fun (_, f) -> f = folder) with
        | Some(first, _) -> yield $"{d.Source}: spec '{d.Spec.Name}' writes {folder}, as spec '{first.Spec.Name}' of {first.Source} does; give one another name or output"
        | None ->
            match RunFolder.problem d.Spec.Output d.Spec.Name with
            | Some message -> yield $"{d.Source}: spec '{d.Spec.Name}': {message}"
            | None -> () ]

let private report (errors: string list) =
    for e in errors do eprintfn "%s" e
    ExitCode.BadSpec

/// Spec paths that look like options: an unknown flag, not a file.
let private unknownFlags (paths: string list) =
    paths |> List.filter (fun p -> p.StartsWith "-") |> List.map (fun p -> $"unknown option '{p}' (see --help)")

let private withSpecs (paths: string list) (only: string list) (action: Loaded -> unit) =
    match unknownFlags paths with
    | [] ->
        match load paths |> Result.bind (fun docs -> selectSpecs only docs |> Result.mapError List.singleton) with
        | Error errors -> report errors
        | Ok docs -> docs |> List.fold (fun code d -> if code <> ExitCode.Ok then code else guarded (Some d) (fun () -> action d)) ExitCode.Ok
    | errors -> report errors

let private runSpecs (args: ParseResults<RunArgs>) =
    let paths = args.GetResult(RunArgs.Specs, defaultValue = [])
    match unknownFlags paths with
    | [] ->
        let loaded =
            load paths
            |> Result.bind (fun docs -> selectSpecs (args.GetResults RunArgs.Only) docs |> Result.mapError List.singleton)
            |> Result.bind (fun docs ->
                let results = docs |> List.map (overrides args)
                match results |> List.collect (function Error e -> e | Ok _ -> []) with
                | [] -> Ok(results |> List.choose (function Ok d -> Some d | Error _ -> None))
                | errors -> Error errors)
        let mode = Sharding.modeOf (args.Contains RunArgs.Prepare) (args.TryGetResult RunArgs.Shard)
        match loaded, mode with
        | Error errors, Error e -> report (e :: errors)
        | Error errors, _ -> report errors
        | Ok _, Error e -> report [ e ]
        | Ok docs, Ok mode ->
            // a cluster job's part writes no run folder: only the assembling run must be free to write it
            match (if mode = Sharding.Whole then runFolderErrors docs else []) with
            | [] ->
                let one (spec: Spec) = if mode = Sharding.Whole then runOne spec else runPart mode spec
                match guarded None Artefacts.ensureRoot with
                | ExitCode.Ok -> docs |> List.fold (fun code d -> if code <> ExitCode.Ok then code else guarded (Some d) (fun () -> one d.Spec)) ExitCode.Ok
                | code -> code
            | errors -> report errors
    | errors -> report errors

/// One line per step of the plan: its short hash, whether the cache holds it (cached, partial, to do) and its name.
let cacheState (plan: Plan.Plan) =
    plan.Steps
    |> List.map (fun s ->
        let state =
            match PlanJson.cacheStateOf s with
            | "partial", parts -> $"partial ({parts} calls stored)"
            | state, _ -> state.PadRight 8
        $"  {Hashing.short s.Hash}  {state}  {s.Name}")
    |> String.concat "\n"

/// The bench's numbers, checked as the spec fields they stand for are.
let private benchErrors (epochs: int) (inputs: int) (samples: int) (size: int) (batch: int) (repeats: int) =
    [ if epochs < 0 || epochs > Vocabulary.Bounds.Epochs then yield $"--epochs {epochs}: must be between 0 and {Vocabulary.Bounds.Epochs}"
      if inputs < 1 || inputs > 10_000 then yield $"--inputs {inputs}: must be between 1 and 10000"
      if samples < 2 || samples > Vocabulary.Bounds.Draws then yield $"--samples {samples}: must be between 2 (VarGrad needs a variance) and {Vocabulary.Bounds.Draws}"
      if size < 32 || size > 1024 then yield $"--size {size}: must be between 32 and 1024 pixels"
      if batch < 1 || batch > Vocabulary.Bounds.BatchSize then yield $"--batch {batch}: must be between 1 and {Vocabulary.Bounds.BatchSize}"
      if repeats < 1 || repeats > 100 then yield $"--repeats {repeats}: must be between 1 and 100" ]

/// The bench's options from its arguments: --quick sets the quick check's values, which explicit options override.
let private benchOptions (args: ParseResults<BenchArgs>) =
    let quick = args.Contains Quick
    let model = args.GetResult(BenchArgs.Model, "fashion_cnn")
    let size = args.GetResult(Size, 224)
    let epochs = args.GetResult(Epochs, (if quick then 0 else 8))
    let natural = model <> "fashion_cnn"
    let inputs = args.GetResult(Inputs, (if quick then 64 elif natural then 4 else 100))
    let samples, batch, repeats = args.GetResult(Samples, 50), args.GetResult(Batch, 256), args.GetResult(Repeats, (if quick then 3 else 5))
    let modelChoice =
        if not natural then Ok(BenchSetup.FashionCnnModel epochs)
        elif Attribution.Models.TorchVisionModels.Names |> Seq.contains model then Ok(BenchSetup.TorchVisionModel(model, size))
        else Error [ $"""--model {model}: not a bench model; use fashion_cnn or a TorchVision architecture ({String.Join(", ", Attribution.Models.TorchVisionModels.Names)})""" ]
    let methods = args.GetResult(Methods, []) |> List.collect (fun s -> s.Split(',', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray)
    let unknownMethods =
        match methods |> List.filter (fun id -> not (List.contains id BenchContenders.ids)) with
        | [] -> []
        | unknown -> [ $"""--methods: unknown contender(s) {String.Join(", ", unknown)}; the bench knows {String.Join(", ", BenchContenders.ids)}""" ]
    let memory = args.GetResult(Memory, [])
    let memoryOnCnn = if natural && not memory.IsEmpty then [ "--memory measures the Fashion-MNIST CNN on its test images: leave out --model" ] else []
    match modelChoice, benchErrors epochs inputs samples size batch repeats @ unknownMethods @ memoryOnCnn with
    | Ok m, [] ->
        Ok { Benchmark.Model = m
             Benchmark.Inputs = inputs
             Benchmark.Samples = samples
             Benchmark.Batch = batch
             Benchmark.Repeats = repeats
             Benchmark.Methods = methods
             Benchmark.MemoryInputs = memory
             Benchmark.Json = args.TryGetResult Json
             Benchmark.PyTorch = args.TryGetResult Pytorch }
    | Error e, errors -> Error(e @ errors)
    | _, errors -> Error errors

/// `attribution slurm`: the spec's run as three chained Slurm jobs (SlurmScripts), written into a folder and, with
/// --submit, submitted. Everything is checked before a file is written: sbatch on PATH, one spec, the numbers.
let private slurm (args: ParseResults<SlurmArgs>) =
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
                              SlurmScripts.Extra = args.GetResults Sbatch |> List.map (fun l -> "#SBATCH " + l.Trim()) }
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

let private dispatch (command: ParseResults<Command>) =
    match command.GetSubCommand() with
    | List args when args.Contains Markdown ->
        for name, table in Catalogue.markdown () do printfn "<!-- generated: %s (attribution list --markdown) -->\n%s\n<!-- end of generated %s -->\n" name table name
        ExitCode.Ok
    | List _ -> printfn "%s" (Catalogue.describe ()); ExitCode.Ok
    | Validate args ->
        withSpecs (args.GetResult(SpecArgs.Specs, defaultValue = [])) (args.GetResults SpecArgs.Only) (fun d ->
            printfn "%s: valid (%d methods, %d metrics)" d.Spec.Name d.Spec.Methods.Length d.Spec.Metrics.Length)
    | Plan args ->
        withSpecs (args.GetResult(PlanArgs.Specs, defaultValue = [])) (args.GetResults PlanArgs.Only) (fun d ->
            let plan = planOf d.Spec
            if args.Contains PlanArgs.Json then printfn "%s" (PlanJson.render plan)
            else
                printfn "%s" (Plan.describe plan)
                printfn "cache (%s):\n%s" (Artefacts.root ()) (cacheState plan))
    | Bench args ->
        let request =
            match args.TryGetResult BenchArgs.Device with
            | Some Cpu -> Attribution.Runtime.DeviceRequest.Cpu
            | Some Cuda -> Attribution.Runtime.DeviceRequest.Cuda
            | _ -> Attribution.Runtime.DeviceRequest.Auto
        match benchOptions args with
        | Ok options -> guarded None (fun () -> Benchmark.run (Attribution.Runtime.TorchRuntime.Resolve request) options)
        | Error errors -> report errors
    | Run args -> runSpecs args
    | Cache args ->
        match args.GetSubCommand() with
        | Verify v -> guarded None (fun () -> CacheCommands.verify (v.Contains Repair))
        | Gc g ->
            let paths = g.GetResult(GcArgs.Specs, defaultValue = [])
            match unknownFlags paths, paths with
            | [], [] -> report [ "cache gc: name the specs whose artefacts to keep (every other artefact is removed)" ]
            | [], _ ->
                match load paths with
                | Error errors -> report errors
                | Ok docs ->
                    let specs = docs |> List.map _.Spec
                    let specs = if g.Contains GcArgs.Full then specs @ (specs |> List.map atFullScale) else specs
                    guarded None (fun () -> CacheCommands.gc (specs |> List.map planOf) (g.Contains Dry_Run))
            | errors, _ -> report errors
    | Export args ->
        match args.TryGetResult ExportArgs.Run, args.TryGetResult ExportArgs.To with
        | Some run, Some target ->
            match unknownFlags [ run ] with
            | [] -> guarded None (fun () -> printfn "%s: exported to %s (see its README.md)" run (Export.write run target))
            | errors -> report errors
        | run, target ->
            report [ if run.IsNone then yield "export: name the run folder to export (RUN, e.g. runs/quickstart)"
                     if target.IsNone then yield "export: name the folder to write with --to FOLDER" ]
    | Slurm args -> slurm args
    | Results args ->
        guarded None (fun () ->
            printfn "%s" (ResultsCommands.list (args.GetResult(ResultsArgs.Output, "runs")) (args.TryGetResult ResultsArgs.Spec) (args.TryGetResult ResultsArgs.Metric)))
    | Compare args ->
        let output = args.GetResult(CompareArgs.Output, "runs")
        let a, b = args.GetResult CompareArgs.Runs
        match ResultsCommands.resolve output a, ResultsCommands.resolve output b with
        | Ok ra, Ok rb -> guarded None (fun () -> printfn "%s" (ResultsCommands.compare output ra rb (args.Contains CompareArgs.All)))
        | ea, eb -> report ([ ea; eb ] |> List.choose (function Error e -> Some e | Ok _ -> None))
    | Verbose | Threads _ -> report [ "no command given (see --help)" ]

/// `--threads N` anywhere on the command line, removed from it and set as $ATTRIBUTION_THREADS before libtorch
/// starts (Attribution.Runtime.TorchRuntime reads it), so that every command honours it.
let private threadsOption (argv: string[]) =
    match argv |> Array.tryFindIndex (fun a -> a = "--threads") with
    | None ->
        // the variable is read when libtorch starts; a bad value is the user's error, said before any work
        match Environment.GetEnvironmentVariable Attribution.Runtime.TorchRuntime.ThreadsVariable with
        | null | "" -> Ok argv
        | text ->
            match Int32.TryParse text with
            | true, n when n >= 1 && n <= 1024 -> Ok argv
            | _ -> Error $"{Attribution.Runtime.TorchRuntime.ThreadsVariable}={text}: must be a whole number of threads between 1 and 1024"
    | Some i ->
        match argv |> Array.tryItem (i + 1) |> Option.map Int32.TryParse with
        | Some(true, n) when n >= 1 && n <= 1024 ->
            Environment.SetEnvironmentVariable(Attribution.Runtime.TorchRuntime.ThreadsVariable, string n)
            Ok(Array.append argv.[.. i - 1] argv.[i + 2 ..])
        | _ -> Error $"--threads needs a whole number of threads between 1 and 1024, got '{argv |> Array.tryItem (i + 1) |> Option.defaultValue String.Empty}'"

let private parseAndDispatch (argv: string[]) =
    let argv =
        match argv with
        | [||] -> [| "run" |]
        | _ when argv.[0].EndsWith ".yaml" || argv.[0].EndsWith ".yml" -> Array.append [| "run" |] argv
        | _ -> argv
    let parser = ArgumentParser.Create<Command>(programName = "attribution")
    try
        match (try Ok(parser.ParseCommandLine(argv, raiseOnUsage = true)) with :? ArguParseException as e -> Error e) with
        | Error e when e.ErrorCode = ErrorCode.HelpText -> printfn "%s" e.Message; ExitCode.Ok
        | Error e -> eprintfn "%s" e.Message; ExitCode.BadSpec
        | Ok command -> dispatch command
    with e ->
        eprintfn "internal error: %s" e.Message
        eprintfn "%O" e
        eprintfn "This is a bug in the toolkit, not in your spec or data; please report it with the output above."
        ExitCode.Internal

/// The program: parses the command line, runs the command, returns the exit code.
let run (argv: string[]) =
    verbose <- argv |> Array.exists (fun a -> a = "--verbose" || a = "-v")
    let argv = argv |> Array.filter (fun a -> a <> "--verbose" && a <> "-v")
    match threadsOption argv with
    | Error message -> eprintfn "%s" message; ExitCode.BadSpec
    | Ok argv -> parseAndDispatch argv
