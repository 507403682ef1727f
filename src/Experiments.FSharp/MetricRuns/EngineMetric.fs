/// A metric defined outside the library (MetricEntry.custom): its engine metric on the explained class's maps. A
/// per-input metric (IPerInputMetric) reads the maps a block at a time (blocks that shards share out) and gets means,
/// intervals and per-input values from the toolkit; a plain IMetric gets the maps whole.
module Experiments.MetricRuns.EngineMetric

open TorchSharp
open Attribution.Metrics
open Experiments
open Experiments.Results
open Experiments.MetricRuns.MetricRun

/// A block's values by name as its part in the cache holds them.
type ValuesPart = { Names: string[]; Values: float[][] }

/// Each input's values, a block of maps at a time: a pass (MetricBlocks: stored as parts, shared out by shards).
let private pass (run: MetricRun) (metric: IPerInputMetric) : MetricBlocks.Pass<(string * float[])[]> =
    let batch = run.Plan.Spec.Explain.BatchSize
    let write, read =
        MetricBlocks.json (fun (values: (string * float[])[]) -> { Names = Array.map fst values; Values = Array.map snd values })
                          (fun p -> Array.zip p.Names p.Values)
    { Name = "values"; Size = 1024; Inputs = None; TieBreakSlots = 0L; ReadsMaps = true; Write = write; Read = read
      Compute =
        fun first n maps _ ->
            use scope = torch.NewDisposeScope()
            let x = (inputsOf run first n).``to``(run.Device)
            let values = metric.EvaluateInputs(MetricInputs(run.Model, x, maps.``to``(run.Device), (targetsOf run first n).``to``(run.Device), run.Seed, run.Device, batch), first) |> Seq.toArray
            for kv in values do
                if kv.Value.Length <> n then failwith $"metric {run.Name}: EvaluateInputs gave {kv.Value.Length} values of '{kv.Key}' for a block of {n} inputs"
            values |> Array.map (fun kv -> kv.Key, kv.Value) }

/// Each name's scalar is its values' mean over the inputs where defined.
let private perInputs (run: MetricRun) (metric: IPerInputMetric) =
    let blocks = MetricBlocks.all run (pass run metric)
    let names = blocks.[0] |> Array.map fst
    let valuesOf (name: string) =
        blocks |> Array.collect (fun b ->
            b |> Array.tryFind (fun (key, _) -> key = name) |> Option.map snd
            |> Option.defaultWith (fun () -> failwith $"metric {run.Name}: a block gave no values of '{name}'"))
    let perInputs = [ for name in names -> { PerInputs.ofScalar name (valuesOf name) with Reduction = PerInputs.MeanOfDefined } ]
    // each scalar is its values reduced as exports state it
    result run [| for p in perInputs -> value p.Name (PerInputs.reduce p) |] "" [||] [||]
    |> withIntervals run [ for p in perInputs -> p.Name, p.Values ]
    |> withPerInput perInputs

let private whole (run: MetricRun) (metric: IMetric) =
    // the one metric whose memory grows with the inputs: where that is felt, say so, with the way out
    let megabytes = float run.Stored.Count * float (Array.fold (*) 1L run.Stored.RowShape) * 4.0 / 1e6
    if megabytes >= 100.0 then
        Progress.say $"{run.Step.Name}: {metric.GetType().Name} is a plain IMetric and gets all {run.Stored.Count} maps at once (about {megabytes:F0} MB as float32); an IPerInputMetric would read them a block at a time"
    use maps = run.Stored.All()
    use inputs = run.Inputs.All()
    let e = metric.Evaluate(MetricInputs(run.Model, inputs.``to``(run.Device), maps.``to``(run.Device), run.Targets.``to``(run.Device), run.Seed, run.Device, run.Plan.Spec.Explain.BatchSize))
    // An engine metric's per-input values of a scalar's name are, by IMetric's contract, values whose mean it is.
    let scalarNames = e.Scalars |> Seq.map _.Key |> set
    result run (e.Scalars |> Seq.map (fun kv -> value kv.Key kv.Value) |> Array.ofSeq) e.XLabel e.X
           (e.Curves |> Seq.map (fun c -> { Name = c.Name; Values = c.Values; Auc = c.Auc }) |> Array.ofSeq)
    |> withPerInput
        [ for kv in e.PerInput ->
            if scalarNames.Contains kv.Key then PerInputs.ofScalar kv.Key kv.Value
            else { Name = kv.Key; Values = kv.Value; Summarises = ""; Reduction = PerInputs.Mean } ]

let private engineOf (run: MetricRun) =
    (MetricRegistry.entryOf run.Metric).Build |> Option.map (fun build -> build run.Metric)
    |> Option.defaultWith (fun () -> failwith $"metric {run.Name} has no engine metric")

/// A per-input metric's pass as a shard shares its blocks out; a plain engine metric reads the maps whole, and is
/// left to the assembling run.
let shared (run: MetricRun) =
    match engineOf run with
    | :? IPerInputMetric as perInput -> [ MetricBlocks.shared run (pass run perInput) ]
    | _ -> []

/// The registered entry's engine metric, evaluated.
let evaluate (run: MetricRun) =
    match engineOf run with
    | :? IPerInputMetric as perInput -> perInputs run perInput
    | engine -> whole run engine
