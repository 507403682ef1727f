/// A spec compiled into plain data: named steps with content hashes and dependencies. Identical work
/// (two methods with the same parameters, say) has the same hash and appears once. `plan` prints this.
module Experiments.Plan

open Experiments
open Experiments.Hashing

type StepKind =
    /// Train the model, or load it from a weights file.
    | ProvideModel
    /// Per-class pixel covariances of the training images (for covariance samplers).
    | EstimateCovariance of jitter: float
    /// Per-class covariances of the training images in another structure (per channel, full, low rank: `rank` is 0
    /// for the others), for the covariance samplers of that structure.
    | EstimateStructuredCovariance of jitter: float * structure: CovarianceLayout * rank: int
    /// Attribution maps of every explained input for one method and one kind of target.
    | Attribute of kind: MethodKind * target: TargetKind
    /// Negative-perturbation curves of one method (needs its maps).
    | EvaluateNegativePerturbation of metric: NegativePerturbationSpec
    /// Spearman agreement between every pair of methods.
    | EvaluateRankAgreement
    /// Any other per-method metric (insertion/deletion, Sensitivity-N, randomisation, certainty).
    | EvaluateMethodMetric of metric: MetricSpec

type Step =
    { /// Stable readable name, e.g. "attribute/fi_sigma/predicted".
      Name: string
      Kind: StepKind
      /// Content hash: the cache key of the step's artefact.
      Hash: string
      /// Names of the steps whose outputs this one reads.
      DependsOn: string list
      /// Method ids served by this step (several when identical methods share it).
      Methods: string list }

type Plan =
    { Spec: Spec
      /// Hash of the data (the dataset files' bytes, the explained subset).
      DataHash: string
      ModelHash: string
      Steps: Step list }

let private targetName = function GroundTruth -> "ground_truth" | Predicted -> "predicted"

/// The sampling parameters of a method that draws samples around the input (the sampler x statistic family).
let samplingOf (kind: MethodKind) = (MethodRegistry.facts kind).Sampling

/// Whether a method samples from the class covariance shared across channels, and with which jitter. Other
/// structures have their own step (structuredCovariance).
let covarianceJitter (kind: MethodKind) =
    match samplingOf kind |> Option.map _.Sampler with
    | Some(CovarianceGaussian c) when c.Structure = SharedAcrossChannels -> Some c.Jitter
    | Some(ConditionalGaussian c) -> Some c.Jitter
    | _ -> None

/// Whether a method samples from a class covariance in another structure than shared across channels (images only):
/// its (jitter, structure, rank), the rank 0 unless the structure is low rank (the spec's default rank means nothing
/// to the other structures, so it must not split their steps).
let structuredCovariance (kind: MethodKind) =
    match samplingOf kind |> Option.map _.Sampler with
    | Some(CovarianceGaussian c) when c.Structure <> SharedAcrossChannels -> Some(c.Jitter, c.Structure, (if c.Structure = LowRank then c.Rank else 0))
    | _ -> None

/// The spec's name of a covariance structure.
let layoutName = function SharedAcrossChannels -> "shared_across_channels" | PerChannel -> "per_channel" | FullMatrix -> "full" | LowRank -> "low_rank"

/// The step name of a structured covariance, e.g. "covariance/low_rank=8/jitter=1E-05".
let structuredCovarianceName (jitter: float, layout: CovarianceLayout, rank: int) =
    match layout with
    | LowRank -> $"covariance/low_rank={rank}/jitter={jitter}"
    | _ -> $"covariance/{layoutName layout}/jitter={jitter}"

/// Names of the covariance steps a method reads (none, or one).
let covarianceStepsOf (kind: MethodKind) =
    (covarianceJitter kind |> Option.map (fun j -> $"covariance/jitter={j}") |> Option.toList)
    @ (structuredCovariance kind |> Option.map structuredCovarianceName |> Option.toList)

/// Whether a method keeps the Fisher statistic (C grad f).grad f / f, which divides by f: f must be a probability.
let dividesByOutput (kind: MethodKind) = (MethodRegistry.facts kind).DividesByOutput

/// Whether a method draws from a class covariance (of any structure), which needs two training inputs of each class.
let usesClassCovariance (kind: MethodKind) =
    match samplingOf kind |> Option.map _.Sampler with
    | Some(CovarianceGaussian _ | ConditionalGaussian _) -> true
    | _ -> false

/// The seed of a method's noise: derived from the spec's seed and the method's parameters (not its id),
/// so identical methods draw identical noise and share one step, and a map for the ground-truth class and
/// for the predicted class of the same input use the same noise. The seed's text is F#'s layout of the parameters (not
/// the canonical text the cache keys use), as in every published run: changing it would redraw every method's noise.
/// Two methods that differ past that layout's precision draw the same noise, which is harmless: they are still
/// different steps. With `explain.common_noise` every method gets the one seed derive(seed, "common_noise"): input i's
/// generator is then the same for all methods (common random numbers), and any program can compute it.
let methodSeed (spec: Spec) (kind: MethodKind) =
    if spec.Explain.CommonNoise then Attribution.Runtime.Seeds.Derive(int64 spec.Seed, "common_noise")
    else Attribution.Runtime.Seeds.Derive(int64 spec.Seed, "method/" + display kind)

/// The target whose maps the per-method metrics and rank agreement evaluate: the predicted class where the spec
/// explains it, else the ground truth.
let metricTarget (spec: Spec) = if List.contains Predicted spec.Explain.Targets then Predicted else GroundTruth

/// The kind of the spec's method with this id.
let methodKind (spec: Spec) (id: string) = (spec.Methods |> List.find (fun m -> m.Id = id)).Kind

/// Compiles a validated spec. `dataHash` identifies the dataset files (computed by the caller, which reads them).
let compile (spec: Spec) (dataHash: string) : Plan =
    let explainedHash = hash [ dataHash; string spec.Seed; string spec.Data.Explain ]
    // The input normalisation is part of the model (appended only when given, so that specs without one keep their keys).
    let normalisation = spec.Model.Normalise |> Option.map canonical |> Option.toList
    // A metric whose definition changed carries its revision in its key (left out at 1, so old keys stay).
    let revision (metric: MetricSpec) =
        match (MetricRegistry.entryOf metric).Revision with
        | 1 -> []
        | n -> [ $"revision {n}" ]
    let modelHash =
        match spec.Model.Architecture, spec.Model.Weights with
        | TorchScript path, _ -> hash ([ "torchscript"; Artefacts.contentHash path ] @ normalisation)
        | _, Some path -> hash ([ "weights"; Artefacts.contentHash path; canonical spec.Model.Architecture ] @ normalisation)
        | _, None -> hash ([ "train"; dataHash; canonical spec.Model.Architecture; string spec.Model.Epochs; string spec.Model.BatchSize
                             canonical spec.Model.LearningRate; canonical spec.Data.TrainLimit; string spec.Seed ] @ normalisation)
    let model = { Name = "model"; Kind = ProvideModel; Hash = modelHash; DependsOn = []; Methods = [] }
    // Text's covariances are over the model's embeddings, so they follow the model; pixels' and waveforms' do not.
    let covarianceModel = match spec.Data.Dataset with SpamAssassin | TextFile _ -> [ modelHash ] | _ -> []
    let covariances =
        spec.Methods |> List.choose (fun m -> covarianceJitter m.Kind) |> List.distinct
        |> List.map (fun j -> { Name = $"covariance/jitter={j}"; Kind = EstimateCovariance j; Hash = hash ([ "covariance"; dataHash; canonical spec.Data.TrainLimit; canonical j ] @ covarianceModel)
                                DependsOn = []; Methods = [] })
    // The shared step's name and key above are unchanged by the other structures (caches and attribution keys stay).
    let structuredCovariances =
        spec.Methods |> List.choose (fun m -> structuredCovariance m.Kind) |> List.distinct
        |> List.map (fun (j, layout, rank) ->
            { Name = structuredCovarianceName (j, layout, rank); Kind = EstimateStructuredCovariance(j, layout, rank)
              Hash = hash ([ "covariance"; dataHash; canonical spec.Data.TrainLimit; canonical j; "structure"; layoutName layout; string rank ] @ covarianceModel)
              DependsOn = []; Methods = [] })
    // Common noise changes every sampling method's draws, so it is in the key when on (and absent when off, so that
    // specs without it keep their keys).
    let commonNoise = if spec.Explain.CommonNoise then [ "common_noise" ] else []
    // fp32 adds nothing, so that the maps stored before precision existed keep their keys
    let precision = match spec.Explain.Precision with Fp32 -> [] | other -> [ "precision"; canonical other ]
    let attributionHash kind target =
        hash ([ "attribute"; modelHash; explainedHash; canonical kind; targetName target; canonical spec.Explain.Output; string spec.Seed ] @ commonNoise @ precision)
    let attributions =
        [ for target in spec.Explain.Targets do
            for (kind, methods) in spec.Methods |> List.groupBy (fun m -> m.Kind) do
                let ids = methods |> List.map (fun m -> m.Id)
                let needs = "model" :: covarianceStepsOf kind
                { Name = $"attribute/{List.head ids}/{targetName target}"; Kind = Attribute(kind, target)
                  Hash = attributionHash kind target; DependsOn = needs; Methods = ids } ]
    let metrics =
        [ for metric in spec.Metrics do
            match metric with
            | NegativePerturbation np ->
                for (kind, methods) in spec.Methods |> List.groupBy (fun m -> m.Kind) do
                    let ids = methods |> List.map (fun m -> m.Id)
                    let maps = attributions |> List.filter (fun a -> match a.Kind with Attribute(k, _) -> k = kind | _ -> false)
                    { Name = $"negative_perturbation/{List.head ids}"; Kind = EvaluateNegativePerturbation np
                      Hash = hash ("negative_perturbation" :: canonical np :: (maps |> List.map (fun a -> a.Hash)) @ revision metric)
                      DependsOn = maps |> List.map (fun a -> a.Name); Methods = ids }
            | InsertionDeletion _ | SensitivityN _ | ParameterRandomisation _ | ExplanationCertainty _ | EffectiveHeatRatio | Roar _ | TaylorFidelity _ | TwoWord _
            | RegisteredMetric _ ->
                let metricName = Catalogue.metricName metric
                for (kind, methods) in spec.Methods |> List.groupBy (fun m -> m.Kind) do
                    let ids = methods |> List.map (fun m -> m.Id)
                    let maps = attributions |> List.filter (fun a -> match a.Kind with Attribute(k, _) -> k = kind | _ -> false)
                    { Name = $"{metricName}/{List.head ids}"; Kind = EvaluateMethodMetric metric
                      Hash = hash (metricName :: canonical metric :: modelHash :: (maps |> List.map (fun a -> a.Hash)) @ revision metric)
                      DependsOn = maps |> List.map (fun a -> a.Name); Methods = ids }
            | RankAgreement ->
                { Name = "rank_agreement"; Kind = EvaluateRankAgreement
                  Hash = hash ("rank_agreement" :: (attributions |> List.map (fun a -> a.Hash)) @ revision metric)
                  DependsOn = attributions |> List.map (fun a -> a.Name); Methods = spec.Methods |> List.map (fun m -> m.Id) } ]
    { Spec = spec; DataHash = dataHash; ModelHash = modelHash; Steps = model :: covariances @ structuredCovariances @ attributions @ metrics }

/// The key of the maps a ROAR step computes for its training subset (and of their parts).
let roarTrainMapsKey (step: Step) = hash [ step.Hash; "roar-train-maps" ]

/// What a ROAR point (which test inputs its retrained model predicts right) is keyed by: the retraining, the model and
/// data, the fraction, and whose ranking removes the pixels (`ranking`: [] for nothing removed, [step hash] for the
/// method's, [ "random" ] for the random one). "per-input": points once stored only the accuracy, under other keys.
let roarPointKey (plan: Plan) (r: RoarSpec) (fraction: float) (ranking: string list) =
    hash ("roar-point" :: "per-input" :: canonical r :: plan.ModelHash :: plan.DataHash :: canonical fraction :: ranking)

/// Every cache key a plan reads or writes: its steps', and the sub-artefacts of ROAR steps (training maps, points).
let artefactKeys (plan: Plan) : string list =
    [ for step in plan.Steps do
        yield step.Hash
        match step.Kind with
        | EvaluateMethodMetric(Roar r) ->
            yield roarTrainMapsKey step
            for f in 0.0 :: r.Fractions do
                for ranking in [ []; [ step.Hash ]; [ "random" ] ] do yield roarPointKey plan r f ranking
        | _ -> () ]

/// The plan as text, one step a line: hash prefix, name, what it needs.
let describe (plan: Plan) =
    let lines =
        [ yield $"plan for '{plan.Spec.Name}' (seed {plan.Spec.Seed}, data {short plan.DataHash})"
          for s in plan.Steps do
              let serves = match s.Methods with [] | [ _ ] -> "" | ids -> "  (serves " + String.concat ", " ids + ")"
              let needs = if s.DependsOn.IsEmpty then "" else "  <- " + String.concat ", " s.DependsOn
              yield $"  {short s.Hash}  {s.Name}{needs}{serves}" ]
    String.concat "\n" lines
