/// The performance harness: what it measures and records, never how fast anything is (figures live in the bench).
module BenchTests

open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Performance
open Experiments

/// A bench of 3 inputs, 4 samples and batch 8 on an untrained CNN, timing nothing and measuring no memory, writing `json`.
let private smallBench (json: string) : Benchmark.BenchOptions =
    { Model = BenchSetup.FashionCnnModel 0; Inputs = 3; Samples = 4; Batch = 8; Repeats = 1
      Methods = []; MemoryInputs = []; MemoryInFreshProcesses = false; Json = Some json; PyTorch = None; Precision = Fp32 }

/// Logits [sum, -sum] of each row, recording how many rows each forward pass saw.
type private BatchRecorder() =
    inherit nn.Module<Tensor, Tensor>("batch_recorder")
    member val Batches = System.Collections.Generic.List<int64>()
    override this.forward(x) =
        this.Batches.Add x.shape.[0]
        let s = x.flatten(1L).sum([| 1L |])
        stack([| s; -s |], 1L)

[<Tests>]
let tests =
    testList "bench" [
        test "the floor's points are each input plus its own N(0, s^2) noise, laid input after input" {
            use scope = NewDisposeScope()
            let x = arange(3L, dtype = ScalarType.Float32).view(3L, 1L, 1L, 1L).expand(3L, 1L, 40L, 40L).contiguous()
            let points = GradientFloor.Points(x, 50, 0.2, 7L)
            Expect.sequenceEqual points.shape [| 150L; 1L; 40L; 40L |] "50 points per input"
            let noise = (points - x.repeat_interleave(50L, 0L)).``to``(ScalarType.Float64)
            // 240,000 normals: the mean's standard error is 0.2 / 490, the standard deviation's about 0.2 / 693
            Expect.floatClose { absolute = 5.0 * 0.2 / 490.0; relative = 0.0 } (noise.mean().item<float>()) 0.0 "noise mean 0"
            Expect.floatClose { absolute = 5.0 * 0.2 / 693.0; relative = 0.0 } (noise.std().item<float>()) 0.2 "noise stdev s"
            let again = GradientFloor.Points(x, 50, 0.2, 7L)
            Expect.isTrue (points.eq(again).all().item<bool>()) "seeded: the same points twice"
            Expect.isFalse (points.narrow(0L, 0L, 1L).eq(points.narrow(0L, 1L, 1L)).all().item<bool>()) "distinct points, not copies"
        }

        test "on a CPU a chunk holds at most 2^20 input values, and batch_size points where they fit" {
            use scope = NewDisposeScope()
            let options = ExplainOptions(Attribution.Methods.OutputFunction.Probability, 256)
            Expect.equal (options.PointsPerChunk(zeros(2L, 1L, 28L, 28L))) 256 "Fashion-MNIST: batch_size"
            Expect.equal (options.PointsPerChunk(zeros(2L, 3L, 224L, 224L))) 6 "224x224x3: 2^20 / 150,528 = 6"
            Expect.equal (options.PointsPerChunk(zeros(1L, 3L, 1024L, 1024L))) 1 "never fewer than one point"
        }

        test "inference in chunks (Training.Logits: accuracy, metrics) holds at most 2^20 input values on a CPU, and chunking changes no logit" {
            use scope = NewDisposeScope()
            let model = new BatchRecorder()
            let large = TestModels.uniform 3 [| 20L; 3L; 224L; 224L |]
            let logits = Attribution.Models.Training.Logits(model, large, CPU)
            Expect.sequenceEqual model.Batches [ 6L; 6L; 6L; 2L ] "2^20 / 150,528 = 6 images a chunk, not the 1,024 asked"
            Expect.isTrue (logits.narrow(1L, 0L, 1L).squeeze(1L).equal(large.flatten(1L).sum([| 1L |])).all().item<bool>()) "each row's own logits"
            model.Batches.Clear()
            Attribution.Models.Training.Logits(model, TestModels.uniform 4 [| 1500L; 1L; 28L; 28L |], CPU) |> ignore
            Expect.sequenceEqual model.Batches [ 1024L; 476L ] "small images: the batch asked (1,337 would fit)"
        }

        test "a --threads that is not a count, and an unknown bench contender, are command-line errors before any work" {
            Expect.equal (Cli.run [| "list"; "--threads"; "zero" |]) ExitCode.BadSpec "--threads zero"
            Expect.equal (Cli.run [| "list"; "--threads" |]) ExitCode.BadSpec "--threads without a count"
            Expect.equal (Cli.run [| "bench"; "--quick"; "--methods"; "nope" |]) ExitCode.BadSpec "an unknown contender"
            Expect.equal (Cli.run [| "bench"; "--quick"; "--precision"; "bf61" |]) ExitCode.BadSpec "an unknown precision"
            Expect.equal (Cli.run [| "bench"; "--quick"; "--precision"; "bf16"; "--pytorch"; "x" |]) ExitCode.BadSpec "bf16 against PyTorch's fp32"
        }

        test "a bf16 bench times the gradient methods in bfloat16 and records it; a method that reads the model's inside is refused" {
            let json = Path.Combine(Path.GetTempPath(), $"bench-{System.Guid.NewGuid():N}.json")
            try
                Benchmark.run CPU { smallBench json with Methods = [ "saliency"; "smooth_grad" ]; Precision = Bf16 }
                use document = JsonDocument.Parse(File.ReadAllText json)
                Expect.equal (document.RootElement.GetProperty("Precision").GetString()) "bf16" "the precision recorded"
                Expect.stringContains (string (document.RootElement.GetProperty("Model").GetString())) "bf16" "and in the model's description"
                let contenders = document.RootElement.GetProperty("Contenders").EnumerateArray() |> Seq.map (fun c -> c.GetProperty("Id").GetString()) |> Seq.toList
                Expect.equal contenders [ "saliency"; "smooth_grad" ] "both timed"
                let e = Expect.throwsC (fun () -> Benchmark.run CPU { smallBench json with Methods = [ "grad_cam" ]; Precision = Bf16 }) id
                Expect.stringContains e.Message "grad_cam" "names the method"
            finally
                if File.Exists json then File.Delete json
        }

        test "the device peak is read from the driver's pool only when libtorch is told to allocate from it" {
            Expect.isTrue (CudaMemoryPool.AllocatesFromPool "backend:cudaMallocAsync") "the backend alone"
            Expect.isTrue (CudaMemoryPool.AllocatesFromPool "expandable_segments:False, backend : cudaMallocAsync") "among other options, spaced"
            Expect.isFalse (CudaMemoryPool.AllocatesFromPool "backend:native") "the caching allocator"
            Expect.isFalse (CudaMemoryPool.AllocatesFromPool "max_split_size_mb:128") "options without a backend"
            Expect.isFalse (CudaMemoryPool.AllocatesFromPool null) "nothing set"
            // This process allocates nothing from the pool (no driver here; on a GPU, libtorch's default allocator uses
            // plain cudaMalloc unless the setting is given), so the peak reads as absent, never as 0 bytes.
            if not (CudaMemoryPool.LibTorchAllocatesFromPool) then
                Expect.isFalse (CudaMemoryPool.PeakBytes 0).HasValue "no peak without pool allocations"
        }

        test "a bench run records, per contender, its rounds, floors, ratios and peak memory in its JSON" {
            let json = Path.Combine(Path.GetTempPath(), $"bench-{System.Guid.NewGuid():N}.json")
            try
                let options = { smallBench json with Repeats = 2; Methods = [ "saliency"; "smooth_grad"; "grad_cam" ] }
                Benchmark.run CPU options
                use document = JsonDocument.Parse(File.ReadAllText json)
                let contenders = document.RootElement.GetProperty("Contenders").EnumerateArray() |> Seq.toList
                Expect.sequenceEqual (contenders |> List.map (fun c -> c.GetProperty("Id").GetString())) [ "saliency"; "smooth_grad"; "grad_cam" ] "the chosen contenders, in order"
                for c in contenders do
                    let id = c.GetProperty("Id").GetString()
                    let seconds = c.GetProperty("Seconds").EnumerateArray() |> Seq.map _.GetDouble() |> Seq.toList
                    let floors = c.GetProperty("FloorSeconds").EnumerateArray() |> Seq.map _.GetDouble() |> Seq.toList
                    Expect.all seconds (fun s -> s > 0.0) $"{id}: positive times"
                    if id = "grad_cam" then
                        Expect.equal seconds.Length 1 "a method without a floor runs once"
                        Expect.isEmpty floors "and has no floor"
                    else
                        Expect.equal seconds.Length 2 $"{id}: one time per round"
                        Expect.equal floors.Length 2 $"{id}: one floor per round"
                        let best = c.GetProperty("BestRatio").GetDouble()
                        Expect.floatClose { absolute = 1e-12; relative = 1e-9 } best (List.min seconds / List.min floors) $"{id}: best ratio = least time / least floor"
                Expect.equal (contenders.[1].GetProperty("PassesPerInput").GetInt32()) 4 "smooth_grad's floor has its 4 passes an input"
                for c in contenders do
                    Expect.equal (c.GetProperty("PeakGpuMb").ValueKind) JsonValueKind.Null "on the CPU no device peak is recorded"
                Expect.isGreaterThan (document.RootElement.GetProperty("Threads").GetInt32()) 0 "the thread count is recorded"
            finally
                if File.Exists json then File.Delete json
        }

        test "--memory alone runs whole runs (attribution steps and block-read metrics) at each count and records their peaks, without the timing set-up" {
            let json = Path.Combine(Path.GetTempPath(), $"bench-{System.Guid.NewGuid():N}.json")
            try
                let options = { smallBench json with MemoryInputs = [ 12; 30 ] }
                Benchmark.run CPU options
                use document = JsonDocument.Parse(File.ReadAllText json)
                Expect.isEmpty (document.RootElement.GetProperty("Contenders").EnumerateArray() |> Seq.toList) "nothing timed"
                let memory = document.RootElement.GetProperty("Memory").EnumerateArray() |> Seq.toList
                Expect.sequenceEqual (memory |> List.map (fun m -> m.GetProperty("Inputs").GetInt32())) [ 12; 30 ] "one whole run per count"
                for m in memory do
                    Expect.isGreaterThan (m.GetProperty("Seconds").GetDouble()) 0.0 "timed"
                    // Linux (/proc) gives a peak; elsewhere it is null
                    if m.GetProperty("PeakRssMb").ValueKind = JsonValueKind.Number then
                        Expect.isGreaterThan (m.GetProperty("PeakRssMb").GetDouble()) 0.0 "a peak was measured"
            finally
                if File.Exists json then File.Delete json
        }

        // In one process the second run would start from what the first left (hundreds of MB of heap and arenas); in a
        // fresh process it starts from the program's baseline, as the first did.
        test "the CLI's --memory runs each count in a fresh process, so the later count's run starts from the same baseline" {
            let folder = TestFiles.freshDir "bench-fresh"
            let json = Path.Combine(folder, "memory.json")
            let code, out, err =
                TestProcesses.run folder [ "ATTRIBUTION_CACHE", Path.Combine(folder, "cache") ] TestProcesses.dotnetHost
                                  [ "exec"; TestProcesses.cli; "bench"; "--memory"; "12"; "30"; "--device"; "cpu"; "--json"; json ]
            Expect.equal code 0 $"the bench ran: {out}\n{err}"
            use document = JsonDocument.Parse(File.ReadAllText json)
            let memory = document.RootElement.GetProperty("Memory").EnumerateArray() |> Seq.toList
            Expect.sequenceEqual (memory |> List.map (fun m -> m.GetProperty("Inputs").GetInt32())) [ 12; 30 ] "one whole run per count"
            let before = memory |> List.map (fun m -> m.GetProperty("RssBeforeMb"))
            if before |> List.forall (fun b -> b.ValueKind = JsonValueKind.Number) then
                let first, second = before.[0].GetDouble(), before.[1].GetDouble()
                Expect.isLessThan second (1.25 * first) $"the second run starts near the first's baseline ({second:F0} MB against {first:F0} MB)"
            Expect.stringContains out "peak at 30 inputs / peak at 12 inputs" "the growth is printed"
        }
    ]
