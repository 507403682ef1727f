/// Runs a plan: provides the model, then runs every step in order (AttributionSteps, MetricSteps). Every step reads its
/// artefact from the cache when it is there (resuming an interrupted run) and writes it atomically when it computes it.
module Experiments.Execute

open System
open System.Collections.Generic
open System.Diagnostics
open System.IO
open TorchSharp
open Attribution
open Attribution.Data
open Attribution.Methods
open Attribution.Metrics
open Attribution.Models
open Attribution.Runtime
open Attribution.Sampling
open Experiments
open Experiments.Plan
open Experiments.Results
open Experiments.Building

type Tensor = torch.Tensor
open Experiments.Running
open Experiments.AttributionSteps
open Experiments.MetricSteps

/// Everything the report needs (Running.RunOutput).
type RunOutput = Running.RunOutput

let dataHash = Running.dataHash
let deviceRequest = Running.deviceRequest
let targetName = Running.targetName
let nonFiniteRows = Running.nonFiniteRows
let methodOf = Running.methodOf
let partFile = AttributionSteps.partFile

/// A user's weights file: loaded strictly (every tensor present, of its shape, finite), or a clear input error.
/// A user's state dict (.safetensors or PyTorch's .pth), every name and shape checked before a value is copied.
let private loadWeights (model: torch.nn.Module) (path: string) =
    try Attribution.Models.StateDict.Load(model, path)
    with
    | :? InvalidDataException
    | :? IOException as e -> raise (InputProblem $"model.weights {path}: {e.Message}")

/// Where a plan's network comes from: the user's TorchScript model or weights, the seeded initialisation of an
/// untrained model (epochs 0), the cache (a model trained by an earlier run: its weights and what the report says of
/// it), or training.
type private ModelSource =
    | UserScript of path: string
    | UserWeights of path: string
    | Untrained
    | Cached of weights: string * info: ModelInfo
    | ToTrain

let private sourceOf (plan: Plan) =
    let spec = plan.Spec
    let weightsFile = Artefacts.path "models" plan.ModelHash ".safetensors"
    match spec.Model.Architecture, spec.Model.Weights with
    | TorchScript path, _ -> UserScript path
    | _, Some path -> UserWeights path
    | _, None when spec.Model.Epochs = 0 -> Untrained
    | _, None ->
        match Artefacts.tryJson<ModelInfo> (Artefacts.path "models" plan.ModelHash ".json") with
        | Some info when Artefacts.soundTensors weightsFile -> Cached(weightsFile, info)
        | _ -> ToTrain

/// A network of the spec's architecture, initialised from the spec's seed (what training starts from).
let private freshNetwork (plan: Plan) (domain: Domain.Domain) =
    torch.manual_seed (Seeds.Derive(int64 plan.Spec.Seed, "model-init")) |> ignore
    domain.NewModel()

/// The plan's network without training it, in eval mode on `device`: None when it must be trained (the trained model
/// is not in the cache). `attribution export` reads a finished run's model this way.
let loadNetwork (plan: Plan) (domain: Domain.Domain) (device: torch.Device) : torch.nn.Module<Tensor, Tensor> option =
    let ready (model: torch.nn.Module<Tensor, Tensor>) = model.``to``(device).eval() |> ignore; Some model
    match sourceOf plan with
    | ToTrain -> None
    | UserScript _ | Untrained -> ready (freshNetwork plan domain)
    | UserWeights path -> let model = freshNetwork plan domain in loadWeights model path; ready model
    | Cached(weights, _) -> let model = freshNetwork plan domain in Safetensors.LoadModule(model, weights); ready model

let private provideModel (plan: Plan) (domain: Domain.Domain) (device: torch.Device) =
    let spec = plan.Spec
    let source = sourceOf plan
    match source, loadNetwork plan domain device with
    | Cached(_, info), Some model ->
        Progress.say $"model: cached {Hashing.short plan.ModelHash} (test accuracy {info.TestAccuracy:P2})"
        model, info
    | _, Some model ->
        let parameters = model.parameters() |> Seq.sumBy (fun p -> p.numel())
        let accuracy = domain.Accuracy model device
        let info source = { Source = source; TestAccuracy = accuracy; TrainingSeconds = 0.0; EpochLosses = [||]; Parameters = parameters }
        match source with
        | UserScript path ->
            // The user's model as exported: never trained, its weights its own.
            Progress.say $"model: TorchScript {path}, test accuracy {accuracy:P2}"
            model, info path
        | UserWeights path ->
            Progress.say $"model: loaded {path}, test accuracy {accuracy:P2}"
            model, info path
        | _ ->
            // A benchmark's model: the architecture's own random initialisation (seeded), said as such in the report.
            Progress.say $"model: random initialisation (epochs 0, untrained), test accuracy {accuracy:P2}"
            model, info "random initialisation (untrained)"
    | _, None ->
        let model = freshNetwork plan domain
        let parameters = model.parameters() |> Seq.sumBy (fun p -> p.numel())
        let options = TrainingOptions(spec.Model.Epochs, spec.Model.BatchSize, spec.Model.LearningRate, Seeds.Derive(int64 spec.Seed, "training"))
        let report = domain.Train model options device (Progress(fun d t m -> Progress.report "train model" d t m))
        model.eval() |> ignore
        let accuracy = domain.Accuracy model device
        Progress.say $"model: trained in {report.Seconds:F1}s, test accuracy {accuracy:P2}"
        let info = { Source = "trained"; TestAccuracy = accuracy; TrainingSeconds = report.Seconds; EpochLosses = Array.ofSeq report.EpochLosses; Parameters = parameters }
        Safetensors.SaveModule(model, Artefacts.path "models" plan.ModelHash ".safetensors",
                               readOnlyDict [ "architecture", Hashing.display spec.Model.Architecture; "test_accuracy", string accuracy ])
        Artefacts.writeJson (Artefacts.path "models" plan.ModelHash ".json") info
        model, info

/// The seeded subset of test images that a run explains; keys are test-set indices.
let explainedIndices (spec: Spec) (testCount: int) =
    use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "explained-set")), torch.CPU)
    use order = torch.randperm(int64 testCount, generator = g)
    order.narrow(0L, 0L, int64 (min spec.Data.Explain testCount)).data<int64>().ToArray()

/// A class covariance needs two training inputs of every class (one gives a zero matrix, none no matrix at all):
/// a spec error at the setting that decides it, before anything is estimated.
let private requireTwoPerClass (spec: Spec) (domain: Domain.Domain) =
    let counts = Array.zeroCreate<int> domain.ClassNames.Length
    for label in domain.TrainLabels.data<int64>().ToArray() do counts.[int label] <- counts.[int label] + 1
    let short = [ for k, n in Array.indexed counts do if n < 2 then yield $"'{domain.ClassNames.[k]}' ({n})" ]
    if not short.IsEmpty then
        let classes = String.concat ", " short
        match spec.Data.TrainLimit with
        | Some limit ->
            raise (SpecProblem("data.train_limit", $"the first {limit} training inputs hold fewer than 2 of the classes {classes}; a class covariance needs 2 of each: raise train_limit"))
        | None -> raise (SpecProblem("data.dataset", $"the training set holds fewer than 2 of the classes {classes}; a class covariance needs 2 of each"))

/// The key of a structured covariance in a setting (the structure's name holds the rank).
let private structuredKey (jitter: float) (structure: Attribution.Sampling.CovarianceStructure) = $"{structure.Name}/{jitter}"

/// What every step of a run reads: the data, the network, the explained inputs with their labels and predictions,
/// and the methods' context (covariances filled in by the covariance steps).
type private Setting =
    { Domain: Domain.Domain
      Network: torch.nn.Module<Tensor, Tensor>
      ModelInfo: ModelInfo
      /// The network seen on method inputs [N, C, H, W].
      Model: torch.nn.Module<Tensor, Tensor>
      /// The Model as the attribution steps explain it, in the spec's precision (explainingModel).
      Explaining: torch.nn.Module<Tensor, Tensor>
      Indices: int64[]
      /// The explained inputs, read from the data set a block at a time.
      Inputs: InputRows.InputRows
      Labels: int64[]
      Predictions: int64[]
      Covariances: Dictionary<float, Attribution.Sampling.ClassCovariance>
      /// The covariances in other structures, by structuredKey.
      Structured: Dictionary<string, Attribution.Sampling.ICovarianceModel>
      Context: MethodContext }

/// The model the attribution steps explain, in the spec's precision: the model itself for fp32 and tf32 (on CUDA the
/// process's TF32 switches for matrix products and convolutions are set to match; libtorch's default would use TF32 in
/// convolutions even for fp32), or for bf16 a copy of the network read again from its source, in bfloat16, behind the
/// domain's view, with inputs cast on the way in and outputs cast back to float32.
let private explainingModel (plan: Plan) (domain: Domain.Domain) (model: torch.nn.Module<Tensor, Tensor>) (device: torch.Device) =
    let precision = plan.Spec.Explain.Precision
    followPrecisionOnCuda precision device
    match precision with
    | Fp32 | Tf32 -> model
    | Bf16 ->
        match loadNetwork plan domain device with
        | Some copy ->
            copy.``to``(torch.ScalarType.BFloat16) |> ignore
            new ReducedPrecisionModel(domain.Explained copy, torch.ScalarType.BFloat16) :> torch.nn.Module<Tensor, Tensor>
        | None -> failwith "the network is not in the cache although it was provided: no bfloat16 copy can be read"

/// Loads the data and the network (training it when the cache lacks it, unless `mustBeCached`: then a missing
/// model is the error of a shard started before its prepare job), and predicts the explained inputs.
let private setUp (plan: Plan) (device: torch.Device) (mustBeCached: bool) =
    let spec = plan.Spec
    Progress.say $"device: {TorchRuntime.Describe device}"
    let domain = DataSources.load spec
    Progress.say $"data: {domain.TrainCount} training and {domain.TestCount} test inputs"
    if spec.Methods |> List.exists (fun m -> Plan.usesClassCovariance m.Kind) then requireTwoPerClass spec domain
    match sourceOf plan with
    | ToTrain when mustBeCached ->
        raise (InputProblem($"the trained model of '{spec.Name}' ({Hashing.short plan.ModelHash}) is not in the cache {Artefacts.root ()}: "
                            + "run the prepare job first (`attribution run SPEC --prepare`, with the same ATTRIBUTION_CACHE)"))
    | _ -> ()
    let network, modelInfo = provideModel plan domain device
    let model = domain.Explained network
    let indices = explainedIndices spec domain.TestCount
    let inputs = InputRows.ofDomain domain network false indices
    let labels = domain.TestLabels.index_select(0L, torch.tensor(indices)).data<int64>().ToArray()
    let logits = InputRows.logits model inputs device
    match nonFiniteRows logits with
    | [||] -> ()
    | bad ->
        raise (InputProblem($"the model's outputs are not finite (NaN or infinity) on {bad.Length} of {indices.Length} explained inputs "
                            + $"(test-set indices {someOf (bad |> Array.map (fun r -> indices.[int r]))}): check the weights and the inputs' scale"))
    let predictions = logits.argmax(1L).data<int64>().ToArray()
    let covariances = Dictionary<float, Attribution.Sampling.ClassCovariance>()
    let references (count: int) =
        use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "references")), torch.CPU)
        use order = torch.randperm(int64 domain.TrainCount, generator = g)
        let rows = order.narrow(0L, 0L, int64 (min count domain.TrainCount)).data<int64>().ToArray()
        (domain.Inputs network true rows).``to``(device)
    // Filled by the structured covariance steps, which come before every attribution step in the plan.
    let structured = Dictionary<string, Attribution.Sampling.ICovarianceModel>()
    let structuredOf (jitter: float) (structure: Attribution.Sampling.CovarianceStructure) =
        match structured.TryGetValue(structuredKey jitter structure) with
        | true, m -> m
        | _ -> failwith $"the class covariances of structure {structure.Name}, jitter {jitter} were not provided: the plan has no covariance step for them"
    { Domain = domain; Network = network; ModelInfo = modelInfo; Model = model; Explaining = explainingModel plan domain model device; Indices = indices; Inputs = inputs
      Labels = labels; Predictions = predictions; Covariances = covariances; Structured = structured
      Context = { Covariances = covariances; References = references; Model = model; Structured = structuredOf } }

/// The cached step's file is there and sound, or the error of a shard started before its prepare job.
let private requireCached (plan: Plan) (step: Step) =
    if not (Artefacts.soundTensors (CovarianceSteps.file step)) then
        raise (InputProblem($"{step.Name} of '{plan.Spec.Name}' is not in the cache {Artefacts.root ()}: "
                            + "run the prepare job first (`attribution run SPEC --prepare`, with the same ATTRIBUTION_CACHE)"))

/// A covariance step: from the cache, or estimated and stored (unless `mustBeCached`, a shard's case).
let private provideCovariance (plan: Plan) (setting: Setting) (step: Step) (jitter: float) (mustBeCached: bool) device =
    if mustBeCached then requireCached plan step
    setting.Covariances.[jitter] <-
        CovarianceSteps.provide step device (fun () ->
            Progress.say $"{step.Name}: estimating {setting.Domain.ClassNames.Length} class covariances from {setting.Domain.TrainCount} training inputs"
            setting.Domain.Covariance setting.Network jitter device)

/// A structured covariance step (per channel, full, low rank; images only): from the cache, or estimated and stored
/// (unless `mustBeCached`, a shard's case).
let private provideStructuredCovariance (plan: Plan) (setting: Setting) (step: Step) (jitter: float, layout: CovarianceLayout, rank: int) (mustBeCached: bool) device =
    if mustBeCached then requireCached plan step
    let domain = setting.Domain
    let structure = CovarianceSteps.structureOf layout rank
    if domain.Modality <> Modality.Image && domain.Modality <> Modality.Tabular then failwith $"covariance structure {structure.Name} is for images; text and audio use shared_across_channels"
    setting.Structured.[structuredKey jitter structure] <-
        CovarianceSteps.provideStructured step device (fun () ->
            Progress.say $"{step.Name}: estimating {domain.ClassNames.Length} class covariances, structure {structure.Name}, from {domain.TrainCount} training inputs"
            let all = Array.init domain.TrainCount int64
            use images = domain.Inputs setting.Network true all
            Attribution.Sampling.CovarianceModels.Estimate(images, domain.TrainLabels, domain.ClassNames.Length, structure, jitter, device))

/// A cluster's prepare job: the model (trained and stored when the cache lacks it) and the covariances, so that the
/// shards started after it only read them.
let prepare (plan: Plan) (device: torch.Device) =
    let setting = setUp plan device false
    for step in plan.Steps do
        match step.Kind with
        | EstimateCovariance jitter -> provideCovariance plan setting step jitter false device
        | EstimateStructuredCovariance(jitter, layout, rank) -> provideStructuredCovariance plan setting step (jitter, layout, rank) false device
        | _ -> ()

/// The run of a metric step on a stored step's maps (its method's maps of the explained class), for a cluster's jobs.
let private metricRun (plan: Plan) (setting: Setting) (step: Step) (metric: MetricSpec) (kind: MethodKind) (maps: StoredMaps option) (targets: Tensor) (classes: int64[]) device
    : MetricRuns.MetricRun.MetricRun =
    let boxes = setting.Domain.Boxes |> Option.map (fun b -> setting.Indices |> Array.map (fun i -> b.[int i]) :> IReadOnlyList<_>)
    { Plan = plan; Step = step; Metric = metric; Kind = kind; Model = setting.Model; Explaining = setting.Explaining; Inputs = setting.Inputs; Maps = maps
      Classes = classes; Targets = targets; Labels = setting.Labels; Boxes = boxes; Context = setting.Context; Domain = setting.Domain
      Network = setting.Network; Rows = setting.Indices; Device = device }

/// The stored maps of a metric step's method for `target`, when they are stored whole.
let private storedMapsFor (plan: Plan) (step: Step) (target: TargetKind) =
    let first = List.head step.Methods
    let kind = methodKind plan.Spec first
    plan.Steps
    |> List.tryFind (fun st -> st.Kind = Attribute(kind, target) && List.contains first st.Methods)
    |> Option.map stepFile
    |> Option.filter Artefacts.soundTensors
    |> Option.map StoredMaps

/// The stored maps a per-method metric reads (its method's maps of the explained class), when they are stored whole.
let private storedMapsOf (plan: Plan) (step: Step) = storedMapsFor plan step (metricTarget plan.Spec)

/// Shard `index` of `count`: its share of every attribution step not yet stored whole, and of ROAR's training maps
/// (the attribution inside that metric), as parts in the cache (the run that assembles them is an ordinary `run` with
/// the same cache), and of the blocks of the metrics that explain their inputs again (the parameter-randomisation
/// cascade, Taylor fidelity: MetricSteps.sharedBeforeMaps). Where a metric's maps are stored whole already (after the
/// maps job, or on a re-run), also its share of ROAR's points (retrainings) and of the blocks of the metrics that split
/// into blocks of inputs (negative perturbation, MetricSteps.sharedPasses). The other metrics are left to the
/// assembling run. Returns the calls, points and blocks computed, and those found stored.
let shard (plan: Plan) (device: torch.Device) (index: int) (count: int) =
    let setting = setUp plan device true
    let counts = List<int * int>()
    let add (c: int, s: int) = counts.Add((c, s))
    // the inputs each shard explains in this wave's attribution calls, where the deal of metric blocks starts
    let loads = Array.zeroCreate<int64> count
    let addLoads (more: int64[]) = for i in 0 .. count - 1 do loads.[i] <- loads.[i] + more.[i]
    let roarPoints = MetricRuns.Roar.ownedPoints plan index count
    let target = metricTarget plan.Spec
    let classes = match target with Predicted -> setting.Predictions | GroundTruth -> setting.Labels
    use targets = torch.tensor(classes)
    let metricPasses = List<MetricRuns.MetricBlocks.SharedPass>()
    for step in plan.Steps do
        match step.Kind with
        | EstimateCovariance jitter -> provideCovariance plan setting step jitter true device
        | EstimateStructuredCovariance(jitter, layout, rank) -> provideStructuredCovariance plan setting step (jitter, layout, rank) true device
        | Attribute(kind, target) ->
            addLoads (attributeLoads plan step kind target setting.Labels setting.Predictions count)
            add (attributeShare plan step kind target setting.Explaining setting.Inputs setting.Labels setting.Predictions setting.Indices setting.Context device index count)
        | EvaluateMethodMetric(Roar r as metric) ->
            let kind = methodKind plan.Spec (List.head step.Methods)
            addLoads (MetricRuns.Roar.trainMapsLoads step r kind setting.Domain count)
            add (MetricRuns.Roar.trainMapsShare plan step r kind setting.Domain setting.Network setting.Explaining setting.Context device index count)
            // the points too, where the maps they remove by are stored whole already
            match storedMapsOf plan step with
            | Some maps -> add (MetricRuns.Roar.pointsShare (metricRun plan setting step metric kind (Some maps) targets classes device) r roarPoints)
            | None -> ()
        | EvaluateNegativePerturbation np when not (File.Exists(Artefacts.path "metrics" step.Hash ".json")) ->
            // every target's maps stored whole, or none of its blocks: the step is one result
            let stored = plan.Spec.Explain.Targets |> List.map (fun t -> t, storedMapsFor plan step t)
            if stored |> List.forall (snd >> Option.isSome) then
                let maps = stored |> List.map (fun (t, m) -> t, Option.get m) |> dict
                metricPasses.AddRange(MetricRuns.NegativePerturbation.shared plan step np setting.Domain setting.Network setting.Indices maps device)
        | EvaluateMethodMetric metric when not (File.Exists(Artefacts.path "metrics" step.Hash ".json")) ->
            // a metric that reads no stored maps (it explains again) is shared out by the first wave already
            let maps = storedMapsOf plan step
            if maps.IsSome || sharedBeforeMaps metric then
                let kind = methodKind plan.Spec (List.head step.Methods)
                metricPasses.AddRange(sharedPasses (metricRun plan setting step metric kind maps targets classes device))
        | _ -> ()
    add (MetricRuns.MetricBlocks.share (List.ofSeq metricPasses) index count loads)
    Seq.sumBy fst counts, Seq.sumBy snd counts

/// A cluster's maps job, between the shards and a second wave of shards: every attribution step assembled from the
/// shards' parts and stored whole (a call without a part is computed), and so are ROAR's training maps, so that the
/// second wave can share out ROAR's points. No metric and no report. Returns the number of maps stored whole.
let maps (plan: Plan) (device: torch.Device) =
    let setting = setUp plan device true
    let stored = Dictionary<string * TargetKind, StoredMaps * IDictionary<string, Tensor>>()
    let target = metricTarget plan.Spec
    let mutable count = 0
    for step in plan.Steps do
        match step.Kind with
        | EstimateCovariance jitter -> provideCovariance plan setting step jitter true device
        | EstimateStructuredCovariance(jitter, layout, rank) -> provideStructuredCovariance plan setting step (jitter, layout, rank) true device
        | Attribute(kind, t) ->
            let first = List.head step.Methods
            let gt = if t = Predicted then stored.TryGetValue((first, GroundTruth)) |> function | true, v -> Some v | _ -> None else None
            let m, d, _, _ = attribute plan step kind t setting.Explaining setting.Inputs setting.Labels setting.Predictions setting.Indices setting.Context gt device
            stored.[(first, t)] <- (m, d)
            count <- count + 1
        | EvaluateMethodMetric(Roar r as metric) ->
            let first = List.head step.Methods
            let kind = methodKind plan.Spec first
            let classes = match target with Predicted -> setting.Predictions | GroundTruth -> setting.Labels
            use targets = torch.tensor(classes)
            MetricRuns.Roar.storeTrainMaps (metricRun plan setting step metric kind (Some(fst stored.[(first, target)])) targets classes device) r
            count <- count + 1
        | _ -> ()
    count

/// Runs every step of the plan on `device`.
let run (plan: Plan) (device: torch.Device) : RunOutput =
    let spec = plan.Spec
    let setting = setUp plan device false
    let domain, network, modelInfo, model = setting.Domain, setting.Network, setting.ModelInfo, setting.Model
    let indices, inputs, labels, predictions = setting.Indices, setting.Inputs, setting.Labels, setting.Predictions
    let context = setting.Context
    let maps = Dictionary<string * TargetKind, StoredMaps>()
    let diagnostics = Dictionary<string * TargetKind, IDictionary<string, Tensor>>()
    let timings = List<AttributionTiming>()
    let npResults = List<MethodCurves>()
    let mutable rankPairs = [||]
    let metricResults = List<MetricResult>()
    for step in plan.Steps do
        match step.Kind with
        | ProvideModel -> ()
        | EstimateCovariance jitter -> provideCovariance plan setting step jitter false device
        | EstimateStructuredCovariance(jitter, layout, rank) -> provideStructuredCovariance plan setting step (jitter, layout, rank) false device
        | Attribute(kind, target) ->
            let first = List.head step.Methods
            let gt = if target = Predicted && maps.ContainsKey((first, GroundTruth)) then Some(maps.[(first, GroundTruth)], diagnostics.[(first, GroundTruth)]) else None
            let m, d, seconds, cached = attribute plan step kind target setting.Explaining inputs labels predictions indices context gt device
            for id in step.Methods do
                maps.[(id, target)] <- m
                diagnostics.[(id, target)] <- d
                timings.Add { Method = id; Target = targetName target; Seconds = seconds; Inputs = labels.Length; Cached = cached }
            Progress.say $"""{step.Name}: {(if cached then "cached" else sprintf "%.1fs" seconds)}"""
        | EvaluateNegativePerturbation np ->
            let first = List.head step.Methods
            let byTarget = spec.Explain.Targets |> List.map (fun t -> t, maps.[(first, t)]) |> dict
            let result = MetricRuns.NegativePerturbation.evaluate plan step np domain network indices labels predictions byTarget device
            for id in step.Methods do npResults.Add { Method = id; Result = result }
        | EvaluateMethodMetric metric ->
            let first = List.head step.Methods
            let target = metricTarget spec
            let classes = match target with Predicted -> predictions | GroundTruth -> labels
            let kind = methodKind spec first
            let explainedBoxes = domain.Boxes |> Option.map (fun b -> indices |> Array.map (fun i -> b.[int i]) :> IReadOnlyList<_>)
            let result = methodMetric plan step metric kind model setting.Explaining inputs maps.[(first, target)] classes labels explainedBoxes context domain network indices device
            for id in step.Methods do metricResults.Add { result with Method = id }
        | EvaluateRankAgreement ->
            let target = metricTarget spec
            rankPairs <- MetricRuns.RankAgreement.evaluate step maps step.Methods target
    let certificates =
        [| for KeyValue((id, target), d) in diagnostics do
             match logSobolev id target d with Some c -> yield c | None -> () |]
    { Result = { Model = modelInfo; Explained = labels.Length; ExplainedIndices = indices; NegativePerturbation = npResults.ToArray()
                 RankAgreement = rankPairs; LogSobolev = certificates; Metrics = metricResults.ToArray(); Timings = timings.ToArray() }
      Inputs = inputs; Labels = labels; Predictions = predictions; ClassNames = domain.ClassNames
      View = domain.View indices; Maps = maps; Diagnostics = diagnostics; Device = string device }

