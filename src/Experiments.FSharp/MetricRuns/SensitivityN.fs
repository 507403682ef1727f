/// Sensitivity-N on one method's maps: pixels masked (images), tokens set to <unk> (texts) or 25 ms frames set to
/// silence (clips), N on a log grid. Every block of inputs draws the same sets (one generator per call, seeded alike),
/// and blocks keep the engine's chunks, so the numbers are those of the whole set at once; the blocks are a pass
/// (MetricBlocks: stored as parts, shared out by shards).
module Experiments.MetricRuns.SensitivityN

open System
open Attribution.Metrics
open Experiments
open Experiments.Results
open Experiments.MetricRuns.MetricRun

/// Over the sizes, the mean over the inputs whose correlation is defined (of a resample of the inputs, `rows`).
let private meanOfMeans (correlations: float[][]) (rows: int[]) =
    let perSize =
        correlations |> Array.choose (fun perInput ->
            let defined = rows |> Array.map (fun i -> perInput.[i]) |> Array.filter (Double.IsNaN >> not)
            if defined.Length = 0 then None else Some(Array.average defined))
    if perSize.Length = 0 then nan else Array.average perSize

/// The result as the report holds it: the mean over sizes of each size's mean over defined correlations.
let private reported (run: MetricRun) (r: SensitivityNResult) (xLabel: string) =
    let x = r.Sizes |> Array.map _.X
    let valid = r.MeanCorrelation |> Array.filter (Double.IsNaN >> not)
    result run [| value "mean_correlation" (if valid.Length = 0 then nan else Array.average valid) |] xLabel x
           [| { Name = "correlation"; Values = r.MeanCorrelation; Auc = nan } |]
    |> withStatistic run "mean_correlation" run.Classes.Length (meanOfMeans r.Correlations)
    |> withPerInput (correlationsPerPoint "N" x r.Correlations)

/// A block's correlations as its part in the cache holds them (the sizes are the run's).
type CorrelationsPart = { Correlations: float[][]; Skipped: int[] }

/// A pass of `size` inputs a block at `sizes`; every block draws the same sets, so no generator runs through them.
let private pass (size: int) (sizes: SubsetSize[]) compute : MetricBlocks.Pass<SensitivityNResult> =
    let write, read =
        MetricBlocks.json (fun (r: SensitivityNResult) -> { Correlations = r.Correlations; Skipped = r.Skipped })
                          (fun p -> SensitivityNResult.Of(sizes, p.Correlations, p.Skipped))
    { Name = "correlations"; Size = size; Inputs = None; TieBreakSlots = 0L; ReadsMaps = true; Compute = (fun first n maps _ -> compute first n maps); Write = write; Read = read }

/// Texts: tokens set to <unk>, N on the log grid up to 80% of the median real length (of all the texts); texts with
/// at most N tokens are skipped at that N.
let private textPass (run: MetricRun) (masks: int) (points: int) =
    let model, tokens, lengths = textOf run
    let sizes = TokenSensitivityN.DefaultSizes(lengths, points)
    let sensitivity, batch = TokenSensitivityN(sizes, masks), run.Plan.Spec.Explain.BatchSize
    pass (alignedBlock [ sensitivity.InputsPerChunk batch; int64 batch ] 1024) sizes (fun first n maps ->
        let t, l, scores = tokenBlock tokens lengths first n maps
        sensitivity.Evaluate(model, t, l, scores, targetsOf run first n, run.Seed, run.Device, batch))

/// Clips: 25 ms frames set to silence.
let private audioPass (run: MetricRun) (masks: int) (points: int) =
    let sizes = Attribution.Metrics.SensitivityN.LogGrid(int run.Inputs.Shape.[1], points) |> Array.map (fun n -> SubsetSize.Count n :> SubsetSize)
    let batch = 1024
    pass (alignedBlock [ 1024L; Attribution.Metrics.SensitivityN.InputsPerChunk(masks, batch) ] 1024) sizes (fun first n maps ->
        use clips = inputsOf run first n
        Attribution.Metrics.SensitivityN.Correlate(frameSpace run clips, maps, targetsOf run first n, sizes, masks, run.Seed, batch))

/// Images: pixels masked in all their channels.
let private imagePass (run: MetricRun) (masks: int) (points: int) =
    let features = int (run.Inputs.Shape.[2] * run.Inputs.Shape.[3])
    let grid = Attribution.Metrics.SensitivityN.LogGrid(features, points)
    let sensitivity = Attribution.Metrics.SensitivityN(grid, masks)
    let sizes = grid |> Array.map (fun n -> SubsetSize.Count n :> SubsetSize)
    pass (alignedBlock [ 1024L; sensitivity.InputsPerChunk() ] 1024) sizes (fun first n maps ->
        use images = inputsOf run first n
        sensitivity.Evaluate(run.Model, images, maps, targetsOf run first n, run.Seed, run.Device))

let private passOf (run: MetricRun) (masks: int) (points: int) =
    match run.Domain.Modality with
    | Modality.Text -> textPass run masks points
    | Modality.Audio -> audioPass run masks points
    | _ -> imagePass run masks points

/// The pass as a shard shares its blocks out.
let shared (run: MetricRun) (masks: int) (points: int) = [ MetricBlocks.shared run (passOf run masks points) ]

/// Sensitivity-N in the modality of the run's data, with `masks` random sets at each of `points` sizes.
let evaluate (run: MetricRun) (masks: int) (points: int) =
    let r = SensitivityNResult.Concatenate(MetricBlocks.all run (passOf run masks points))
    let xLabel =
        match run.Domain.Modality with
        | Modality.Text -> "N (tokens set to <unk>)"
        | Modality.Audio -> "N (25 ms frames set to silence)"
        | _ -> "N (pixels masked)"
    reported run r xLabel
