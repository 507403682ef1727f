/// Metric steps: each metric's evaluation is its own file under MetricRuns/; here a per-method metric is read from the
/// cache or evaluated and stored as a sealed JSON artefact under its step's hash.
module Experiments.MetricSteps

open System.Collections.Generic
open TorchSharp
open Experiments
open Experiments.Building
open Experiments.Plan
open Experiments.Results
open Experiments.MetricRuns

type Tensor = torch.Tensor

/// A per-method metric on the maps of the explained class, cached as JSON by the step's hash. Insertion/deletion,
/// Sensitivity-N, EHR, explanation certainty and a user's per-input metric read the maps a block of inputs at a time
/// (the parameter-randomisation cascade and Taylor fidelity run a block at a time too, and ROAR reads its sets' maps
/// in blocks); a user's plain engine metric reads them whole.
let methodMetric (plan: Plan) (step: Step) (metric: MetricSpec) (kind: MethodKind) (model: torch.nn.Module<Tensor, Tensor>) (explaining: torch.nn.Module<Tensor, Tensor>)
                 (inputs: InputRows.InputRows) (stored: StoredMaps) (classes: int64[]) (labels: int64[]) (boxes: IReadOnlyList<Attribution.Data.IRegion> option)
                 (context: MethodContext) (domain: Domain.Domain) (network: torch.nn.Module<Tensor, Tensor>) (rows: int64[]) device =
    let file = Artefacts.path "metrics" step.Hash ".json"
    let result, _ = Artefacts.jsonOrCompute file (fun () ->
        use targets = torch.tensor(classes)
        let run: MetricRun.MetricRun =
            { Plan = plan; Step = step; Metric = metric; Kind = kind; Model = model; Explaining = explaining; Inputs = inputs; Maps = Some stored; Classes = classes
              Targets = targets; Labels = labels; Boxes = boxes; Context = context; Domain = domain; Network = network; Rows = rows; Device = device }
        Progress.say $"{step.Name}: {classes.Length} inputs"
        match metric with
        | InsertionDeletion(pixels, sigma) -> InsertionDeletion.evaluate run pixels sigma
        | SensitivityN(masks, points) -> SensitivityN.evaluate run masks points
        | ParameterRandomisation count -> ParameterRandomisation.evaluate run count
        | ExplanationCertainty pairs -> ExplanationCertainty.evaluate run pairs
        | EffectiveHeatRatio -> EffectiveHeatRatio.evaluate run
        | TaylorFidelity count -> TaylorFidelity.evaluate run count
        | TwoWord pairs -> TwoWord.evaluate run pairs
        | Roar r -> Roar.evaluate run r
        | RegisteredMetric _ -> EngineMetric.evaluate run
        | NegativePerturbation _ | RankAgreement -> failwith "not a per-method metric")
    MetricBlocks.deleteParts step.Hash
    result

/// Whether shards share out some of the metric's work once its maps are stored whole (ROAR's points, blocks of
/// inputs): a cluster run of a spec with one gets a maps job and a second wave of shards (SlurmScripts). The
/// parameter-randomisation cascade and Taylor fidelity explain their inputs again and read no stored maps, so the
/// first wave of shards shares them out (sharedBeforeMaps).
let sharedAfterMaps (metric: MetricSpec) =
    match metric with
    | Roar _ | InsertionDeletion _ | SensitivityN _ | NegativePerturbation _ -> true
    | ParameterRandomisation _ | TaylorFidelity _ -> false
    | RegisteredMetric _ -> (MetricRegistry.entryOf metric).Build |> Option.exists (fun build -> build metric :? Attribution.Metrics.IPerInputMetric)
    | ExplanationCertainty _ | EffectiveHeatRatio | TwoWord _ | RankAgreement -> false

/// Whether shards share out the metric's blocks before its maps are stored (they read none).
let sharedBeforeMaps (metric: MetricSpec) =
    match metric with
    | ParameterRandomisation _ | TaylorFidelity _ -> true
    | _ -> false

/// The passes of a per-method metric whose blocks shards share out (insertion/deletion, Sensitivity-N, the
/// parameter-randomisation cascade, Taylor fidelity, a user's per-input metric; negative perturbation, a step of its own, has its own);
/// the others are computed whole by the assembling run.
let sharedPasses (run: MetricRun.MetricRun) =
    match run.Metric with
    | InsertionDeletion(pixels, sigma) -> InsertionDeletion.shared run pixels sigma
    | SensitivityN(masks, points) -> SensitivityN.shared run masks points
    | RegisteredMetric _ -> EngineMetric.shared run
    | ParameterRandomisation count -> ParameterRandomisation.shared run count
    | TaylorFidelity count -> TaylorFidelity.shared run count
    | ExplanationCertainty _ | EffectiveHeatRatio | TwoWord _ | Roar _
    | NegativePerturbation _ | RankAgreement -> []

/// The log-Sobolev check of a Gaussian method's diagnostics: Ent(f) <= I(f)/2 per input, and the median ratio.
let logSobolev (methodId: string) (target: TargetKind) (diagnostics: IDictionary<string, Tensor>) =
    match diagnostics.TryGetValue "entropy", diagnostics.TryGetValue "half_fisher_information" with
    | (true, ent), (true, half) ->
        let e = ent.``to``(torch.ScalarType.Float64).data<float>().ToArray()
        let h = half.``to``(torch.ScalarType.Float64).data<float>().ToArray()
        let ratios = Array.zip e h |> Array.filter (fun (_, hh) -> hh > 0.0) |> Array.map (fun (ee, hh) -> ee / hh) |> Array.sort
        Some { Method = methodId; Target = Running.targetName target; MeanEntropy = Array.average e; MeanHalfFisher = Array.average h
               HoldsFraction = (Array.zip e h |> Array.filter (fun (ee, hh) -> ee <= hh) |> Array.length |> float) / float e.Length
               MedianRatio = if ratios.Length = 0 then nan else ratios.[ratios.Length / 2] }
    | _ -> None

