/// Sensitivity-N on one method's maps: pixels masked (images), tokens set to <unk> (texts) or 25 ms frames set to
/// silence (clips), N on a log grid. Every block of inputs draws the same sets (one generator per call, seeded alike),
/// and blocks keep the engine's chunks, so the numbers are those of the whole set at once.
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

let private text (run: MetricRun) (masks: int) (points: int) =
    let model, tokens, lengths = textOf run
    // N on the log grid up to 80% of the median real length (of all the texts); texts with at most N tokens are skipped at that N.
    let sizes = TokenSensitivityN.DefaultSizes(lengths, points)
    let sensitivity, batch = TokenSensitivityN(sizes, masks), run.Plan.Spec.Explain.BatchSize
    let r =
        SensitivityNResult.Concatenate
            (run.Stored.MapBlocks(alignedBlock [ sensitivity.InputsPerChunk batch; int64 batch ] 1024, fun first n maps ->
                let t, l, scores = tokenBlock tokens lengths first n maps
                sensitivity.Evaluate(model, t, l, scores, targetsOf run first n, run.Seed, run.Device, batch)))
    reported run r "N (tokens set to <unk>)"

let private audio (run: MetricRun) (masks: int) (points: int) =
    let sizes = Attribution.Metrics.SensitivityN.LogGrid(int run.Inputs.shape.[1], points) |> Array.map (fun n -> SubsetSize.Count n :> SubsetSize)
    let batch = 1024
    let r =
        SensitivityNResult.Concatenate
            (run.Stored.MapBlocks(alignedBlock [ 1024L; Attribution.Metrics.SensitivityN.InputsPerChunk(masks, batch) ] 1024, fun first n maps ->
                Attribution.Metrics.SensitivityN.Correlate(frameSpace run first n, maps, targetsOf run first n, sizes, masks, run.Seed, batch)))
    reported run r "N (25 ms frames set to silence)"

let private image (run: MetricRun) (masks: int) (points: int) =
    let features = int (run.Inputs.shape.[2] * run.Inputs.shape.[3])
    let sensitivity = Attribution.Metrics.SensitivityN(Attribution.Metrics.SensitivityN.LogGrid(features, points), masks)
    let block = alignedBlock [ 1024L; sensitivity.InputsPerChunk() ] 1024
    let r =
        SensitivityNResult.Concatenate
            (run.Stored.MapBlocks(block, fun first n maps ->
                sensitivity.Evaluate(run.Model, inputsOf run first n, maps, targetsOf run first n, run.Seed, run.Device)))
    reported run r "N (pixels masked)"

/// Sensitivity-N in the modality of the run's data, with `masks` random sets at each of `points` sizes.
let evaluate (run: MetricRun) (masks: int) (points: int) =
    match run.Domain.Modality with
    | Modality.Text -> text run masks points
    | Modality.Audio -> audio run masks points
    | _ -> image run masks points
