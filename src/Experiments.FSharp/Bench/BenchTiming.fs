/// Timing one contender against its floor, as the CLI runs it: calls of the method's inputs per call (50, or 10 for
/// the slow methods), each call's maps moved to the CPU; the floor spends the same passes in the same chunks per call.
module Experiments.BenchTiming

open System
open System.Diagnostics
open TorchSharp
open Attribution.Methods
open Attribution.Performance

type private Tensor = torch.Tensor
type private Device = torch.Device

/// Waits for the device's queued work, so that a clock read afterwards has seen it finish.
let synchronise (device: Device) = if device.``type`` = DeviceType.CUDA then torch.cuda.synchronize()

/// The calls the CLI would make: (first row, rows) of `count` inputs, `perCall` at a time.
let calls (count: int64) (perCall: int) = [ for start in 0L .. int64 perCall .. count - 1L -> start, min (int64 perCall) (count - start) ]

/// Explains one call's inputs (rows start .. start + size - 1), the maps moved to the CPU as the CLI does.
let private explainCall (m: IAttributionMethod) model (x: Tensor) (y: Tensor) (start: int64) (size: int64) (batch: int) (seed: int64) =
    use scope = torch.NewDisposeScope()
    let keys = Array.init (int size) (fun i -> start + int64 i)
    use e = m.Explain(model, x.narrow(0L, start, size), y.narrow(0L, start, size), ExplainOptions(OutputFunction.Probability, batch, seed, keys))
    e.Maps.cpu() |> ignore

/// Seconds of `work`, the device's queue drained before and after.
let private timed (device: Device) (work: unit -> unit) =
    synchronise device
    let clock = Stopwatch.StartNew()
    work ()
    synchronise device
    clock.Elapsed.TotalSeconds

/// Seconds to explain every input, call by call.
let explainSeconds (m: IAttributionMethod) model (x: Tensor) (y: Tensor) (perCall: int) (batch: int) (seed: int64) =
    timed x.device (fun () -> for start, size in calls x.shape.[0] perCall do explainCall m model x y start size batch seed)

/// The method's seconds and its floor's seconds (`passes` passes per input) over every input, measured call by call
/// in alternation: each call's floor runs just before the call itself, so that the two see the same state of a
/// machine whose speed drifts (other tenants, frequency) and their ratio keeps little of that drift. The floor's
/// points are drawn before its clock starts (GradientFloor says why they are noisy copies).
let pairedSeconds (m: IAttributionMethod) model (x: Tensor) (y: Tensor) (passes: int) (perCall: int) (batch: int) (seed: int64) =
    let mutable floor, method = 0.0, 0.0
    for start, size in calls x.shape.[0] perCall do
        use scope = torch.NewDisposeScope()
        let points = GradientFloor.Points(x.narrow(0L, start, size), passes, 0.15, seed + start)
        let targets = y.narrow(0L, start, size).repeat_interleave(int64 passes, 0L)
        // the same chunks as the method's (ExplainOptions.PointsPerChunk caps them on a CPU for large inputs)
        let chunk = ExplainOptions(OutputFunction.Probability, batch).PointsPerChunk(x)
        floor <- floor + timed x.device (fun () -> GradientFloor.Run(model, points, targets, chunk))
        method <- method + timed x.device (fun () -> explainCall m model x y start size batch seed)
    method, floor

/// The median of a non-empty list.
let median (values: float list) =
    let sorted = List.sort values |> Array.ofList
    let n = sorted.Length
    if n % 2 = 1 then sorted.[n / 2] else 0.5 * (sorted.[n / 2 - 1] + sorted.[n / 2])

/// Peak memory in MB over `work`: the process's RSS (None where the system does not report it) and, on CUDA, the
/// device memory libtorch had in use (None unless it allocates from the driver's pool: CudaMemoryPool).
let peakMegabytes (device: Device) (work: unit -> 'a) =
    let megabytes (bytes: Nullable<int64>) = bytes |> Option.ofNullable |> Option.map (fun b -> float b / 1e6)
    let gpu = if device.``type`` = DeviceType.CUDA then Some(max device.index 0) else None
    let gpuReset = gpu |> Option.exists (fun index -> synchronise device; CudaMemoryPool.ResetPeak index)
    let reset = ProcessMemory.ResetPeak()
    let result = work ()
    synchronise device
    let peak = if reset then megabytes ProcessMemory.PeakBytes else None
    let gpuPeak = match gpu with Some index when gpuReset -> megabytes (CudaMemoryPool.PeakBytes index) | _ -> None
    result, peak, gpuPeak
