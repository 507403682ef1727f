/// Explanation certainty (Sampling Matters): the mutual information between pixel values and their attributions over
/// sampled (pixel, attribution) pairs. The pairs' positions are drawn first, then each block of maps gives the pairs in
/// it, so the maps are never whole.
module Experiments.MetricRuns.ExplanationCertainty

open TorchSharp
open Attribution.Information
open Experiments.Results
open Experiments.MetricRuns.MetricRun

/// The estimate over `pairs` pooled pairs; its interval is a jackknife over groups of inputs, not a bootstrap (the
/// engine's ExplanationCertainty says why).
let evaluate (run: MetricRun) (pairs: int) =
    let perInput = run.Stored.RowShape |> Array.fold (*) 1L
    let positions = ExplanationCertainty.PairPositions(int64 run.Stored.Count * perInput, pairs, run.Seed)
    let blocks = run.Stored.MapBlocks(1024, fun first n maps -> use x = inputsOf run first n in ExplanationCertainty.PairsIn(x, maps, int64 first, positions))
    use values = torch.cat([| for struct (v, _) in blocks -> v |], 0L)
    use attributions = torch.cat([| for struct (_, a) in blocks -> a |], 0L)
    for struct (v, a) in blocks do v.Dispose(); a.Dispose()
    let struct (mi, ci) = ExplanationCertainty.Estimate(values, attributions, positions, perInput, int64 run.Stored.Count, 3, run.Seed)
    { result run [| value "mutual_information_nats" mi |] "" [||] [||] with Intervals = [| Intervals.named "mutual_information_nats" ci |] }
