/// Negative perturbation (Functional Information): the most important fraction of each explained input's features
/// masked, for each method, and how often the prediction stays right (or unchanged); a curve over the fractions and its
/// AUC, with intervals over the inputs. Masked a block of inputs at a time: a pass per target (MetricBlocks: stored as
/// parts, shared out by shards).
module Experiments.MetricRuns.NegativePerturbation

open System.Collections.Generic
open TorchSharp
open Attribution.Runtime
open Experiments
open Experiments.Plan
open Experiments.Results
open Experiments.MetricRuns.MetricRun

/// Inputs per block: the engine masks 1,024 inputs at a time.
let private npBlock = alignedBlock [ 1024L ] 1024

/// The pass of one target's maps: each block's masked predictions [fractions, n] (MetricBlocks: stored as parts,
/// shared out by shards); one tie-breaking generator runs through the blocks as through the whole set.
let private pass (plan: Plan) (step: Step) (np: NegativePerturbationSpec) (domain: Domain.Domain) model (rows: int64[]) (target: TargetKind)
                 (stored: StoredMaps) device =
    let source : MetricBlocks.Source =
        MetricBlocks.storedSource step.Hash step.Name (Seeds.Derive(int64 plan.Spec.Seed, "negative_perturbation")) stored
    let write, read =
        MetricBlocks.json (fun (masked: Tensor) -> [| for k in 0L .. masked.shape.[0] - 1L -> masked.[k].data<int64>().ToArray() |])
                          (fun (rows: int64[][]) -> torch.tensor(Array.concat rows).reshape(int64 rows.Length, int64 rows.[0].Length))
    source,
    ({ Name = Running.targetName target; Size = npBlock; Inputs = None; TieBreakSlots = domain.MaskedSlots; ReadsMaps = true; Write = write; Read = read
       Compute = fun first n block tieBreak -> domain.MaskedPredictions model rows.[first .. first + n - 1] block np.Fractions np.MaskValue tieBreak device }
     : MetricBlocks.Pass<Tensor>)

/// The passes as a shard shares their blocks out: one per target whose maps are stored whole.
let shared (plan: Plan) (step: Step) (np: NegativePerturbationSpec) (domain: Domain.Domain) model (rows: int64[]) (maps: IDictionary<TargetKind, StoredMaps>) device =
    [ for KeyValue(target, stored) in maps -> pass plan step np domain model rows target stored device ||> MetricBlocks.sharedOver ]

/// The curves of one method, for the targets whose maps it has: accuracy against the labels, and against the predictions.
let evaluate (plan: Plan) (step: Step) (np: NegativePerturbationSpec) (domain: Domain.Domain) model (rows: int64[]) (labels: int64[]) (predictions: int64[])
             (maps: IDictionary<TargetKind, StoredMaps>) device =
    let file = Artefacts.path "metrics" step.Hash ".json"
    let result, _ = Artefacts.jsonOrCompute file (fun () ->
        let labelTensor = torch.tensor(labels)
        let predictionTensor = torch.tensor(predictions)
        let fractions = Array.ofList np.Fractions
        // Masked a block of inputs at a time, each block read from its part or computed.
        let maskedPredictions (target: TargetKind) (stored: StoredMaps) =
            let parts = pass plan step np domain model rows target stored device ||> MetricBlocks.over
            let all = torch.cat(parts, 1L)
            for p in parts do p.Dispose()
            all
        let curve name (masked: Tensor) (reference: Tensor) =
            let values = Attribution.Metrics.NegativePerturbation.AgreementPercent(masked, reference)
            // Per input: 100 where the masked prediction agrees, at each fraction, and its AUC; their mean is the AUC.
            use agree = masked.eq(reference.unsqueeze(0L)).``to``(torch.ScalarType.Float64).mul(torch.tensor(100.0)).t().contiguous()
            let perInput = agree.data<float>().ToArray() |> Array.chunkBySize fractions.Length |> Array.map (fun row -> Attribution.Metrics.Auc.Trapezoid(fractions, row))
            { Name = name; Values = values; Auc = Attribution.Metrics.Auc.Trapezoid(fractions, values) },
            Intervals.ofInputs plan.Spec.Seed $"negative_perturbation/{List.head step.Methods}" name perInput,
            // the trapezoid is linear in the curve, so the mean of the inputs' AUCs is the AUC of the mean curve
            { Name = name; Values = perInput; Summarises = $"auc {name}"; Reduction = PerInputs.Mean }
        Progress.say $"{step.Name}: masking {np.Fractions.Length} fractions of {labels.Length} inputs"
        let curves =
            [| match maps.TryGetValue GroundTruth with
               | true, m ->
                   use masked = maskedPredictions GroundTruth m
                   yield curve "accuracy_gt" masked labelTensor
               | _ -> ()
               match maps.TryGetValue Predicted with
               | true, m ->
                   // one masking of the predicted class's maps, read against the labels and against the predictions
                   use masked = maskedPredictions Predicted m
                   yield curve "accuracy_predicted" masked labelTensor
                   yield curve "consistency" masked predictionTensor
               | _ -> () |]
        { Fractions = fractions; Curves = curves |> Array.map (fun (c, _, _) -> c); Intervals = curves |> Array.map (fun (_, i, _) -> i)
          PerInput = curves |> Array.map (fun (_, _, p) -> p) })
    MetricBlocks.deleteParts step.Hash
    result
