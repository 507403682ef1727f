/// The command line: `run`, `plan`, `validate`, `list`, `bench`, `cache`, `export`, `results`, `compare` and `slurm`,
/// each error a message and an exit code (README). A bare spec path means `run`; no argument at all runs the embedded
/// quickstart spec. Reading spec files is SpecFiles, how a command ends is CliOutcome, `slurm` is SlurmCommand.
module Experiments.Cli

open System
open System.IO
open System.Reflection
open Argu
open Experiments
open Experiments.CliArgs

open Experiments.SpecFiles
open Experiments.CliOutcome

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
    | Sharding.MapsOnly ->
        let steps = Execute.maps plan device
        let hasRoar = plan.Steps |> List.exists (fun s -> match s.Kind with Plan.EvaluateMethodMetric(Roar _) -> true | _ -> false)
        let next = if hasRoar then "; shards run after it share out ROAR's points" else ""
        printfn "%s: %d maps stored whole in %s%s" spec.Name steps (Artefacts.root ()) next
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
        let mode = Sharding.modeOf (args.Contains RunArgs.Prepare) (args.Contains RunArgs.Maps) (args.TryGetResult RunArgs.Shard)
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
    let precision, precisionErrors =
        match args.TryGetResult BenchArgs.Precision with
        | None -> Fp32, []
        | Some name ->
            match Vocabulary.Names.precisions |> List.tryFind (fst >> (=) name) with
            | Some(_, p) when p <> Fp32 && args.Contains Pytorch -> p, [ $"--precision {name} with --pytorch: the PyTorch comparison is in fp32; leave one out" ]
            | Some(_, p) -> p, []
            | None -> Fp32, [ $"""--precision {name}: use {String.Join(", ", Vocabulary.Names.precisions |> List.map fst)}""" ]
    match modelChoice, benchErrors epochs inputs samples size batch repeats @ unknownMethods @ memoryOnCnn @ precisionErrors with
    | Ok m, [] ->
        Ok { Benchmark.Model = m
             Benchmark.Inputs = inputs
             Benchmark.Samples = samples
             Benchmark.Batch = batch
             Benchmark.Repeats = repeats
             Benchmark.Methods = methods
             Benchmark.MemoryInputs = memory
             Benchmark.MemoryInFreshProcesses = true
             Benchmark.Json = args.TryGetResult Json
             Benchmark.PyTorch = args.TryGetResult Pytorch
             Benchmark.Precision = precision }
    | Error e, errors -> Error(e @ errors)
    | _, errors -> Error errors

let private dispatch (command: ParseResults<Command>) =
    match command.GetSubCommand() with
    | List args when args.Contains Markdown ->
        for name, table in CatalogueText.markdown () do printfn "<!-- generated: %s (attribution list --markdown) -->\n%s\n<!-- end of generated %s -->\n" name table name
        ExitCode.Ok
    | List _ -> printfn "%s" (CatalogueText.describe ()); ExitCode.Ok
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
    | Slurm args -> SlurmCommand.run args
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
