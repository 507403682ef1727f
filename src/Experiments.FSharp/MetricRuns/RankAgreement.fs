/// Rank agreement: the Spearman correlation of every pair of methods' maps, input by input, reading both steps' maps a
/// block at a time, with bootstrap intervals over the inputs.
module Experiments.MetricRuns.RankAgreement

open System
open System.Collections.Generic
open TorchSharp
open Attribution.Metrics
open Attribution.Runtime
open Experiments
open Experiments.Plan
open Experiments.Results

/// Every pair of `methods`, in order, with the mean of their inputs' correlations (where defined).
let evaluate (step: Step) (maps: IReadOnlyDictionary<string * TargetKind, StoredMaps>) (methods: string list) (target: TargetKind) =
    let file = Artefacts.path "metrics" step.Hash ".json"
    fst <| Artefacts.jsonOrCompute file (fun () ->
        let perInputOf (a: StoredMaps) (b: StoredMaps) =
            [| for first, n in StoredMaps.Blocks a.Count 1024 do
                 use scope = torch.NewDisposeScope()
                 let flat (stored: StoredMaps) = stored.Rows(first, n).reshape(int64 n, -1L).``to``(torch.ScalarType.Float32).data<float32>().ToArray()
                 let da, db = flat a, flat b
                 let d = da.Length / n
                 yield! [| for r in 0 .. n - 1 -> RankCorrelation.Spearman(ArraySegment(da, r * d, d), ArraySegment(db, r * d, d)) |] |]
        [| for i, a in List.indexed methods do
             for b in List.skip (i + 1) methods do
                 let perInput = perInputOf maps.[(a, target)] maps.[(b, target)]
                 let values = perInput |> Array.filter (Double.IsNaN >> not)
                 // seeded by the step's key, which derives from the spec's seed
                 let ci = Bootstrap.MeanInterval(values, Seeds.Derive(0L, $"bootstrap/{step.Hash}/{a}/{b}"))
                 yield { A = a; B = b; Spearman = (if values.Length = 0 then nan else Array.average values); Inputs = values.Length
                         Intervals = [| Intervals.named "spearman" ci |]
                         PerInput = [| { Name = "spearman"; Values = perInput; Summarises = "scalar spearman"; Reduction = PerInputs.MeanOfDefined } |] } |])
