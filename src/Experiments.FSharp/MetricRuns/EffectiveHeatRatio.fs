/// The Effective Heat Ratio (InputIBA): how much of a map's heat lies in the input's ground-truth box, at quantile
/// thresholds, a block of maps at a time.
module Experiments.MetricRuns.EffectiveHeatRatio

open System
open Attribution.Metrics
open Experiments.Results
open Experiments.MetricRuns.MetricRun

/// EHR over the explained inputs that have a box (a dataset with boxes is checked by validation).
let evaluate (run: MetricRun) =
    let boxes = run.Boxes |> Option.defaultWith (fun () -> failwith "effective_heat_ratio needs a dataset with boxes (fashion_canvas)")
    let r =
        EffectiveHeatRatioResult.Concatenate
            (run.Stored.MapBlocks(1024, fun first n maps -> EffectiveHeatRatio().Evaluate(maps, [| for i in first .. first + n - 1 -> boxes.[i] |])))
    let scored = r.Ehr |> Array.filter (Double.IsNaN >> not)
    let meanRatio =
        Array.init r.Quantiles.Length (fun q ->
            let rows = r.Ratios |> Array.filter (fun row -> row.Length > q && not (Double.IsNaN row.[q]))
            if rows.Length = 0 then nan else rows |> Array.averageBy (fun row -> row.[q]))
    result run [| value "ehr" r.Mean; value "inputs_scored" (float scored.Length); value "inputs_excluded" (float r.Excluded) |]
           "quantile threshold" (Array.ofSeq r.Quantiles) [| { Name = "heat_ratio"; Values = meanRatio; Auc = r.Mean } |]
    |> withIntervals run [ "ehr", r.Ehr ]
    |> withPerInput [ { PerInputs.ofScalar "ehr" r.Ehr with Reduction = PerInputs.MeanOfDefined } ]
