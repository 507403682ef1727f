/// A timing benchmark for Extremal Perturbations, not a test: it runs only when EXTREMAL_BENCH=1 and prints seconds per
/// input (FashionCnn, untrained, 100 iterations) at 28 and 56 px for chunks of 8 and 50 inputs, then a per-operation
/// breakdown of one iteration. EXTREMAL_BENCH_ITERATIONS=N changes the 100; EXTREMAL_BENCH_SIDES=28,56 picks the sizes; EXTREMAL_BENCH_BATCHES=1,10,50 the chunks (none: only the breakdown); EXTREMAL_BENCH_BREAKDOWN_BATCH=N the breakdown's chunk (50); EXTREMAL_BENCH_SAVE=DIR also writes each run's maps to DIR, to compare two builds.
module ExtremalBenchmark

open System
open System.Diagnostics
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Models

let private enabled () = Environment.GetEnvironmentVariable "EXTREMAL_BENCH" = "1"

/// Iterations per timed call: EXTREMAL_BENCH_ITERATIONS, 100 by default.
let private iterations () =
    match Int32.TryParse(Environment.GetEnvironmentVariable "EXTREMAL_BENCH_ITERATIONS") with
    | true, n when n > 0 -> n
    | _ -> 100

let private inputs side count =
    use g = new Generator(7UL, CPU)
    rand([| int64 count; 1L; int64 side; int64 side |], generator = g)

let private model side =
    torch.manual_seed 3L |> ignore
    let m = new FashionCnn(FashionCnn.Shape(ImageSize = side))
    m.eval()
    m

/// Seconds per input of one Explain call with `iterations` iterations, all inputs in one chunk.
let private perInput side batch iterations =
    use scope = NewDisposeScope()
    let m = model side
    let x = inputs side batch
    let targets = zeros([| int64 batch |], dtype = ScalarType.Int64)
    let ep = ExtremalPerturbation(iterations = iterations)
    let clock = Stopwatch.StartNew()
    let e = ep.Explain(m, x, targets, ExplainOptions(BatchSize = batch))
    let seconds = clock.Elapsed.TotalSeconds / float batch
    match Environment.GetEnvironmentVariable "EXTREMAL_BENCH_SAVE" with
    | null | "" -> ()
    | dir -> e.Maps.save(IO.Path.Combine(dir, $"maps_{side}_{batch}.pt")) |> ignore
    seconds

/// Milliseconds per iteration spent in each piece of the loop, measured over `iterations` iterations.
let private breakdown side batch iterations =
    use scope = NewDisposeScope()
    let m = model side
    for p in m.parameters() do p.requires_grad <- false
    let x = inputs side batch
    let targets = zeros([| int64 batch |], dtype = ScalarType.Int64)
    let ep = ExtremalPerturbation()
    let struct (step, sigma, maxBlur) = ep.SizesFor(int64 side, int64 side)
    use generator = new SmoothMask(int64 side, int64 side, step, sigma, CPU, ScalarType.Float32)
    use pyramid = new BlurPyramid(x, 8, maxBlur)
    let pixels = generator.PaddedHeight * generator.PaddedWidth
    let zerosCount = int64 (float pixels * 0.9)
    let reference = cat([| zeros(zerosCount); ones(pixels - zerosCount) |], 0L).unsqueeze(0L)
    let grid = new Modules.Parameter(ones([| int64 batch; 1L; generator.GridHeight; generator.GridWidth |]), requires_grad = true)
    use sgd = optim.SGD([| grid |], 0.01, momentum = 0.9, dampening = 0.9)
    let names = [| "mask"; "pyramid"; "flip"; "forward"; "sort+area"; "backward"; "step+clamp" |]
    let totals = Array.zeroCreate<float> names.Length
    let clock = Stopwatch()
    let timed i (f: unit -> 'a) =
        clock.Restart()
        let r = f ()
        totals.[i] <- totals.[i] + clock.Elapsed.TotalMilliseconds
        r
    for t in 0 .. iterations - 1 do
        use stepScope = NewDisposeScope()
        sgd.zero_grad()
        let canvas = timed 0 (fun () -> generator.GenerateWithMargin(grid))
        let perturbed = timed 1 (fun () -> pyramid.Apply(generator.Window(canvas)))
        let perturbed = timed 2 (fun () -> if t % 2 = 0 then perturbed.flip(3L) else perturbed)
        let reward = timed 3 (fun () -> m.forward(perturbed).gather(1L, targets.unsqueeze(1L)).squeeze(1L))
        let loss = timed 4 (fun () ->
            let struct (sorted, _) = canvas.reshape(int64 batch, pixels).sort(1L, stable = true)
            ((sorted - reference).square().mean([| 1L |]) * 300.0 - reward).sum())
        timed 5 (fun () -> loss.backward())
        timed 6 (fun () ->
            sgd.step() |> ignore
            use _ = no_grad()
            grid.clamp_(Scalar.op_Implicit 0.0, Scalar.op_Implicit 1.0) |> ignore)
    grid.Dispose()
    Array.zip names (totals |> Array.map (fun ms -> ms / float iterations))

[<Tests>]
let tests =
    testList "extremal_perturbation benchmark" [
        test "seconds per input and per-operation breakdown (EXTREMAL_BENCH=1)" {
            if enabled () then
                printfn "threads: %d" (torch.get_num_threads())
                let sides =
                    match Environment.GetEnvironmentVariable "EXTREMAL_BENCH_SIDES" with
                    | null | "" -> [ 28; 56 ]
                    | text -> text.Split ',' |> Seq.map int |> List.ofSeq
                for side in sides do
                    let batches =
                        match Environment.GetEnvironmentVariable "EXTREMAL_BENCH_BATCHES" with
                        | null | "" -> [ 8; 50 ]
                        | "none" -> []
                        | text -> text.Split(',') |> Seq.map int |> List.ofSeq
                    for batch in batches do
                        let n = iterations ()
                        let s = perInput side batch n
                        printfn "extremal %d px, batch %d: %.3f s per input for %d iterations (%.1f s for 800)" side batch s n (800.0 / float n * s)
                let breakdownBatch =
                    match Int32.TryParse(Environment.GetEnvironmentVariable "EXTREMAL_BENCH_BREAKDOWN_BATCH") with
                    | true, n when n > 0 -> n
                    | _ -> 50
                for side in sides do
                    let parts = breakdown side breakdownBatch 20
                    let total = parts |> Array.sumBy snd
                    printfn "breakdown %d px, batch %d, ms per iteration (total %.1f): %s" side breakdownBatch total
                        (parts |> Array.map (fun (n, ms) -> $"{n} {ms:F1}") |> String.concat ", ")
            else
                skiptest "set EXTREMAL_BENCH=1 to run the benchmark"
        }
    ]
