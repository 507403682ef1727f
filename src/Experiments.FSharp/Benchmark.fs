/// `attribution bench`: the performance harness. For each contender it measures, in the same process and interleaved,
/// the floor (forward plus input-gradient passes at the method's count and batch) and the method, repeats, and
/// prints the median time, the ratio to the floor with its range, images per second and the peak RSS; the figures
/// also go to a JSON file. `--memory` measures how peak memory grows with the number of explained inputs over a whole
/// run on the CLI's own path (attribution steps stored call by call, metrics reading the maps a block at a time).
module Experiments.Benchmark

open System
open System.IO
open System.Text.Json
open TorchSharp
open Attribution.IO
open Attribution.Methods
open Attribution.Runtime
open Attribution.Performance
open Experiments.BenchSetup
open Experiments.BenchContenders
open Experiments.BenchTiming

type private Tensor = torch.Tensor
type private Device = torch.Device

/// What to measure.
type BenchOptions =
    { Model: BenchModel
      Inputs: int
      Samples: int
      Batch: int
      Repeats: int
      /// Contender ids to time; empty: every contender with a floor at 28 pixels, every contender at natural-image size.
      Methods: string list
      /// Input counts for the memory check (empty: none).
      MemoryInputs: int list
      /// Whether each count of the memory check runs in a fresh process of this program (the CLI does), so that no
      /// count's peak includes what an earlier count's run left in the process (allocator arenas, the .NET heap).
      MemoryInFreshProcesses: bool
      Json: string option
      /// A folder to write the weights, inputs and saliency maps into for scripts/bench_pytorch.py.
      PyTorch: string option
      /// The network's arithmetic (explain.precision's choices); bf16 times only methods with a floor.
      Precision: Precision }

/// One contender's figures.
type ContenderFigures =
    { Id: string
      Inputs: int
      PassesPerInput: Nullable<int>
      SetupSeconds: float
      Seconds: float list
      FloorSeconds: float list
      MedianSeconds: float
      /// The best time: images per second and seconds an image are computed from it.
      BestSeconds: float
      /// The best (least) time of the method over the best time of the floor: noise on this kind of machine only ever
      /// adds time (other tenants, frequency), so the minima are the steadiest estimate of the cost itself.
      BestRatio: float
      /// Median of the per-repeat ratios method / floor, and their range (NaN without a floor).
      Ratio: float
      RatioLow: float
      RatioHigh: float
      ImagesPerSecond: float
      SecondsPerImage: float
      PeakRssMb: Nullable<float>
      /// On CUDA, the most device memory libtorch had in use over the rounds (method and floor), when it allocates from
      /// the driver's pool (PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync); otherwise null.
      PeakGpuMb: Nullable<float> }

type MemoryFigures =
    { Method: string; Inputs: int; Seconds: float; RssBeforeMb: Nullable<float>; PeakRssMb: Nullable<float>; RssAfterMb: Nullable<float>
      PeakGpuMb: Nullable<float> }

type BenchRecord =
    { Date: string
      Machine: string
      Cores: int
      Threads: int
      Runtime: string
      Model: string
      Batch: int
      Samples: int
      Repeats: int
      Precision: string
      Contenders: ContenderFigures list
      Memory: MemoryFigures list }

let private nullable (o: float option) = match o with Some v -> Nullable v | None -> Nullable()

let private cpuName () =
    try
        File.ReadLines "/proc/cpuinfo" |> Seq.tryFind (fun l -> l.StartsWith "model name")
        |> Option.map (fun l -> l.Substring(l.IndexOf ':' + 1).Trim()) |> Option.defaultValue "unknown CPU"
    with _ -> "unknown CPU"

/// Times the chosen contenders: one warm-up call each, then `repeats` rounds over every contender in turn, each
/// measuring the method and its floor call by call in alternation (BenchTiming.pairedSeconds).
let private timeContenders (setup: Setup) (options: BenchOptions) (contenders: Contender list) =
    let device = setup.Inputs.device
    let built =
        contenders
        |> List.map (fun c ->
            let clock = Diagnostics.Stopwatch.StartNew()
            let m = MethodRegistry.build setup.Context c.Spec.Kind
            let perCall = Running.inputsPerCall c.Spec.Kind
            // warm-up: the first call of a method allocates and JIT-compiles what later calls reuse; a slow method
            // (minutes an input) is timed once without one, the warm-up being a small part of its time
            if c.Passes.IsSome then
                explainSeconds m setup.Model (setup.Inputs.narrow(0L, 0L, 1L)) (setup.Targets.narrow(0L, 0L, 1L)) perCall options.Batch 0L |> ignore
            Progress.say (sprintf "%s: built%s in %.1f s" c.Id (if c.Passes.IsSome then " and warmed up on one input" else "") clock.Elapsed.TotalSeconds)
            c, m, perCall, clock.Elapsed.TotalSeconds)
    let seconds = Collections.Generic.Dictionary<string, float list * float list * float option * float option>()
    let larger a b = match a, b with Some a, Some b -> Some(max a b) | a, b -> Option.orElse a b
    // slow methods (no floor) run once: they take minutes an input at natural-image size
    for round in 1 .. options.Repeats do
        for c, m, perCall, _ in built do
            if round = 1 || c.Passes.IsSome then
                let (time, floor), peak, gpuPeak =
                    peakMegabytes device (fun () ->
                        match c.Passes with
                        | Some p -> let t, f = pairedSeconds m setup.Model setup.Inputs setup.Targets p perCall options.Batch 1L in t, Some f
                        | None -> explainSeconds m setup.Model setup.Inputs setup.Targets perCall options.Batch 1L, None)
                let times, floors, peaks, gpuPeaks = match seconds.TryGetValue c.Id with | true, v -> v | _ -> [], [], None, None
                seconds.[c.Id] <- times @ [ time ], floors @ (Option.toList floor), larger peaks peak, larger gpuPeaks gpuPeak
                Progress.say (sprintf "round %d/%d %-24s %8.3f s%s" round options.Repeats c.Id time
                                  (match floor with Some f -> sprintf " (floor %.3f s, ratio %.3f)" f (time / f) | None -> ""))
    [ for c, _, _, setupSeconds in built ->
        let times, floors, peak, gpuPeak = seconds.[c.Id]
        let ratios = if floors.IsEmpty then [] else List.map2 (/) times floors
        let t = List.min times
        let n = float options.Inputs
        { Id = c.Id
          Inputs = options.Inputs
          PassesPerInput = (match c.Passes with Some p -> Nullable p | None -> Nullable())
          SetupSeconds = setupSeconds
          Seconds = times
          FloorSeconds = floors
          MedianSeconds = median times
          BestSeconds = t
          BestRatio = (if floors.IsEmpty then nan else List.min times / List.min floors)
          Ratio = (if ratios.IsEmpty then nan else median ratios)
          RatioLow = (if ratios.IsEmpty then nan else List.min ratios)
          RatioHigh = (if ratios.IsEmpty then nan else List.max ratios)
          ImagesPerSecond = n / t
          SecondsPerImage = t / n
          PeakRssMb = nullable peak
          PeakGpuMb = nullable gpuPeak } ]

/// Peak RSS of a whole run (Execute.run, the CLI's path) explaining `count` test inputs, in a scratch cache: the data,
/// the model, two attribution steps stored call by call, and the metrics that read the maps a block at a time
/// (negative perturbation for both targets, insertion/deletion on both substrates at 112 pixels a step, the methods' rank
/// agreement, and ROAR at one fraction on 1,000 training inputs, one epoch a retraining). The model is the CNN's seeded
/// initialisation (epochs 0): memory does not depend on the weights, and nothing but ROAR's models is trained.
let private memoryCheck (device: Device) (count: int) =
    let scratch = Path.Combine(Path.GetTempPath(), $"attribution-bench-{Guid.NewGuid():N}")
    let previous = Environment.GetEnvironmentVariable "ATTRIBUTION_CACHE"
    Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", scratch)
    try
        let spec =
            Dsl.spec $"memory-{count}" |> Dsl.withExplainCount count |> Dsl.withEpochs 0
            |> Dsl.withMethods [ Dsl.saliency; Dsl.gradientXInput ]
            |> Dsl.withMetrics [ Dsl.negativePerturbation; Dsl.rankAgreement; InsertionDeletion(112, 20.0)
                                 Roar { Fractions = [ 0.5 ]; TrainInputs = 1000; Epochs = 1 } ]
        let plan = Plan.compile spec (Execute.dataHash spec)
        GC.Collect()
        let before = ProcessMemory.CurrentBytes |> Option.ofNullable |> Option.map (fun b -> float b / 1e6)
        let clock = Diagnostics.Stopwatch.StartNew()
        let output, peak, gpuPeak = peakMegabytes device (fun () -> Execute.run plan device)
        let seconds = clock.Elapsed.TotalSeconds
        GC.Collect()
        let after = ProcessMemory.CurrentBytes |> Option.ofNullable |> Option.map (fun b -> float b / 1e6)
        { Method = "saliency + gradient_x_input, negative_perturbation, insertion_deletion, rank_agreement, roar"; Inputs = count; Seconds = seconds
          RssBeforeMb = nullable before; PeakRssMb = nullable peak; RssAfterMb = nullable after; PeakGpuMb = nullable gpuPeak }
    finally
        Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", previous)
        try Directory.Delete(scratch, true) with _ -> ()

let private show (v: float) (format: float -> string) = if Double.IsNaN v then "-" else format v

let private megabytes (v: Nullable<float>) = if v.HasValue then sprintf "%.0f MB" v.Value else "-"

/// The table of contenders; on CUDA with a column for the device memory's peak, or a line saying how to measure it.
let private printTable (device: Device) (figures: ContenderFigures list) =
    let cuda = device.``type`` = DeviceType.CUDA
    let gpuHeader = if cuda then sprintf " %9s" "peak GPU" else ""
    printfn "%-24s %9s %9s %9s %10s %26s %10s %9s %9s%s" "method" "passes/in" "best s" "floor s" "best ratio" "per-round ratio: median [range]" "images/s" "s/image" "peak RSS" gpuHeader
    for f in figures do
        let passes = if f.PassesPerInput.HasValue then string f.PassesPerInput.Value else "-"
        let ratio = show f.Ratio (fun r -> sprintf "%.3f [%.3f, %.3f]" r f.RatioLow f.RatioHigh)
        let floor = if f.FloorSeconds.IsEmpty then "-" else sprintf "%.3f" (List.min f.FloorSeconds)
        let gpu = if cuda then sprintf " %9s" (megabytes f.PeakGpuMb) else ""
        printfn "%-24s %9s %9.3f %9s %10s %32s %10.4g %9.4g %9s%s" f.Id passes (List.min f.Seconds) floor (show f.BestRatio (sprintf "%.3f")) ratio f.ImagesPerSecond f.SecondsPerImage (megabytes f.PeakRssMb) gpu
    if cuda && figures |> List.forall (fun f -> not f.PeakGpuMb.HasValue) then
        printfn "peak GPU: not measured; libtorch's default caching allocator keeps its counters out of TorchSharp's reach. Run with %s=%s to measure it from the driver's memory pool (the times then use that allocator)."
            CudaMemoryPool.AllocatorSetting CudaMemoryPool.PoolAllocator

/// The memory check of `count` inputs in a fresh process of this program (`bench --memory COUNT`, on the same device
/// and, through the environment, the same threads), read back from its JSON figures.
let private memoryCheckApart (device: Device) (count: int) =
    let json = Path.Combine(Path.GetTempPath(), $"attribution-bench-memory-{Guid.NewGuid():N}.json")
    try
        let executable, before = SelfCommand.parts ()
        let start = Diagnostics.ProcessStartInfo(executable, UseShellExecute = false, RedirectStandardOutput = true)
        let deviceName = if device.``type`` = DeviceType.CUDA then "cuda" else "cpu"
        for a in before @ [ "bench"; "--memory"; string count; "--device"; deviceName; "--json"; json ] do start.ArgumentList.Add a
        use child = Diagnostics.Process.Start start |> Option.ofObj |> Option.defaultWith (fun () -> failwith $"{executable}: did not start")
        // its figures come back through the JSON file; its standard output (the same lines) is not repeated
        child.StandardOutput.ReadToEnd() |> ignore
        child.WaitForExit()
        if child.ExitCode <> 0 then failwith $"bench --memory {count} in a fresh process failed (exit code {child.ExitCode}); its errors are above"
        use document = JsonDocument.Parse(File.ReadAllText json)
        let m = document.RootElement.GetProperty("Memory").[0]
        let number (name: string) =
            match m.GetProperty(name) with
            | v when v.ValueKind = JsonValueKind.Number -> Nullable(v.GetDouble())
            | _ -> Nullable()
        { Method = m.GetProperty("Method").GetString() |> Option.ofObj |> Option.defaultValue ""; Inputs = m.GetProperty("Inputs").GetInt32()
          Seconds = m.GetProperty("Seconds").GetDouble(); RssBeforeMb = number "RssBeforeMb"; PeakRssMb = number "PeakRssMb"; RssAfterMb = number "RssAfterMb"
          PeakGpuMb = number "PeakGpuMb" }
    finally
        if File.Exists json then File.Delete json

/// The memory checks of `--memory`, printed as they finish, with the growth of the peak against the first count.
let private memoryChecks (device: Device) (counts: int list) (freshProcesses: bool) =
    let memory =
        [ for count in counts ->
            let m = if freshProcesses && counts.Length > 1 then memoryCheckApart device count else memoryCheck device count
            printfn "memory: a whole run (%s) on %d inputs: %.1f s, RSS before %s, peak %s, after %s%s" m.Method m.Inputs m.Seconds
                (megabytes m.RssBeforeMb) (megabytes m.PeakRssMb) (megabytes m.RssAfterMb)
                (if m.PeakGpuMb.HasValue then sprintf "; peak GPU %s" (megabytes m.PeakGpuMb) else "")
            m ]
    match memory with
    | first :: rest when first.PeakRssMb.HasValue ->
        for m in rest do
            if m.PeakRssMb.HasValue then
                printfn "memory: peak at %d inputs / peak at %d inputs = %.2f (target: at most 1.2 for 10x the inputs)" m.Inputs first.Inputs (m.PeakRssMb.Value / first.PeakRssMb.Value)
    | _ -> ()
    memory

let private writeJson (path: string) (record: BenchRecord) =
    let json = JsonSerializerOptions(WriteIndented = true, NumberHandling = Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals)
    AtomicFile.WriteAllText(Path.GetFullPath path, JsonSerializer.Serialize(record, json))
    printfn "figures written to %s" (Path.GetFullPath path)

let run (device: Device) (options: BenchOptions) =
    let runtime = TorchRuntime.Describe device
    let record model batch samples repeats figures memory =
        { Date = DateTime.UtcNow.ToString "yyyy-MM-dd HH:mm 'UTC'"; Machine = cpuName (); Cores = Environment.ProcessorCount
          Threads = torch.get_num_threads (); Runtime = runtime; Model = model; Batch = batch; Samples = samples; Repeats = repeats
          Precision = Vocabulary.Names.precisions |> List.find (snd >> (=) options.Precision) |> fst
          Contenders = figures; Memory = memory }
    // --memory alone: whole runs on their own untrained model, so the timing set-up (a trained model, covariances) is skipped.
    if options.Methods.IsEmpty && not options.MemoryInputs.IsEmpty && options.PyTorch.IsNone then
        printfn "bench: memory of whole runs; machine: %s, %d cores; %s" (cpuName ()) Environment.ProcessorCount runtime
        let memory = memoryChecks device options.MemoryInputs options.MemoryInFreshProcesses
        options.Json |> Option.iter (fun path -> writeJson path (record "fashion_cnn (untrained), whole runs" 0 0 1 [] memory))
    else
    let setup = BenchSetup.create options.Model options.Inputs device Progress.say |> BenchSetup.withPrecision options.Precision device
    try
        options.PyTorch |> Option.iter (fun dir -> BenchPyTorch.write dir setup options.Model options.Samples options.Batch)
        let every = BenchContenders.all options.Samples setup.Covariance setup.Stage
        let chosen =
            match options.Methods, options.Model with
            | [], FashionCnnModel _ -> withFloor every
            // bf16 is seen at the network's input and output only: methods that read its stages are left out
            | [], _ when options.Precision = Bf16 -> withFloor every
            | [], _ -> every
            | ids, _ ->
                match ids |> List.filter (fun id -> not (every |> List.exists (fun c -> c.Id = id))) with
                | [] -> every |> List.filter (fun c -> List.contains c.Id ids)
                | unknown -> invalidArg "methods" $"""unknown bench method(s) {String.Join(", ", unknown)}; the bench knows {String.Join(", ", every |> List.map _.Id)}"""
        match chosen |> List.filter (fun c -> c.Passes.IsNone) with
        | structural when options.Precision = Bf16 && not structural.IsEmpty ->
            invalidArg "methods" $"""--precision bf16 runs a bfloat16 copy seen at its input and output only; {String.Join(", ", structural |> List.map _.Id)} read the model's inside: time them in fp32"""
        | _ -> ()
        printfn "bench: %s; %d inputs, %d samples (steps) per input, batch %d, %d repeats" setup.Describe options.Inputs options.Samples options.Batch options.Repeats
        printfn "machine: %s, %d cores; %s" (cpuName ()) Environment.ProcessorCount runtime
        let figures = if chosen.IsEmpty then [] else timeContenders setup options chosen
        if not figures.IsEmpty then printTable device figures
        let memory = memoryChecks device options.MemoryInputs options.MemoryInFreshProcesses
        options.Json |> Option.iter (fun path -> writeJson path (record setup.Describe options.Batch options.Samples options.Repeats figures memory))
    finally
        for d in setup.Disposables do d.Dispose()
