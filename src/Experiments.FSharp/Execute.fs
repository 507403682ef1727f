/// Runs a plan: the only F# module that touches TorchSharp. Every step reads its artefact from the cache
/// when it is there (resuming an interrupted run) and writes it atomically when it computes it.
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

/// Everything the report needs: results plus the tensors to draw.
type RunOutput =
    { Result: RunResult
      /// Explained inputs as methods saw them [N, C, H, W] (images themselves; see Domain), labels, predictions (CPU).
      Images: Tensor
      Labels: int64[]
      Predictions: int64[]
      ClassNames: string list
      /// How the explained inputs are shown to a person.
      View: Domain.InputView
      /// Maps per method id and target (CPU).
      Maps: IReadOnlyDictionary<string * TargetKind, Tensor>
      /// Per-input diagnostics (e.g. the log-Sobolev estimates) per method id and target (CPU).
      Diagnostics: IReadOnlyDictionary<string * TargetKind, IDictionary<string, Tensor>>
      Device: string }

let targetName = function GroundTruth -> "ground_truth" | Predicted -> "predicted"

/// The engine's output function for a spec's `explain.output`.
let outputOf (spec: Spec) =
    match spec.Explain.Output with
    | Probability -> Attribution.Methods.OutputFunction.Probability
    | Logit -> Attribution.Methods.OutputFunction.Logit

let deviceRequest = function Auto -> DeviceRequest.Auto | Cpu -> DeviceRequest.Cpu | Cuda -> DeviceRequest.Cuda

/// The hash of the dataset's content, for the plan.
let dataHash (spec: Spec) = Domain.dataHash spec

/// Rows of a tensor [N, ...] that hold a NaN or an infinity.
let nonFiniteRows (t: Tensor) : int64[] =
    use scope = torch.NewDisposeScope()
    t.isfinite().logical_not().reshape(t.shape.[0], -1L).any(1L).nonzero().reshape(-1L).cpu().data<int64>().ToArray()

let private someOf (keys: int64[]) =
    let shown = keys |> Array.truncate 10 |> Array.map string |> String.concat ", "
    if keys.Length > 10 then shown + ", ..." else shown

/// A user's weights file: loaded strictly (every tensor present, of its shape, finite), or a clear input error.
let private loadWeights (model: torch.nn.Module) (path: string) =
    try Safetensors.LoadModule(model, path)
    with
    | :? InvalidDataException
    | :? IOException as e -> raise (InputProblem $"model.weights {path}: {e.Message}")

let private provideModel (plan: Plan) (domain: Domain.Domain) (device: torch.Device) =
    let spec = plan.Spec
    let weightsFile = Artefacts.path "models" plan.ModelHash ".safetensors"
    let infoFile = Artefacts.path "models" plan.ModelHash ".json"
    torch.manual_seed (Seeds.Derive(int64 spec.Seed, "model-init")) |> ignore
    let model = domain.NewModel()
    let parameters = model.parameters() |> Seq.sumBy (fun p -> p.numel())
    match spec.Model.Weights with
    | Some path ->
        loadWeights model path
        model.``to``(device).eval() |> ignore
        let accuracy = domain.Accuracy model device
        Progress.say $"model: loaded {path}, test accuracy {accuracy:P2}"
        model, { Source = path; TestAccuracy = accuracy; TrainingSeconds = 0.0; EpochLosses = [||]; Parameters = parameters }
    | None when (Artefacts.tryJson<ModelInfo> infoFile).IsSome && Artefacts.soundTensors weightsFile ->
        Safetensors.LoadModule(model, weightsFile)
        model.``to``(device).eval() |> ignore
        let info = (Artefacts.tryJson<ModelInfo> infoFile).Value
        Progress.say $"model: cached {Hashing.short plan.ModelHash} (test accuracy {info.TestAccuracy:P2})"
        model, info
    | None ->
        let options = TrainingOptions(spec.Model.Epochs, spec.Model.BatchSize, spec.Model.LearningRate, Seeds.Derive(int64 spec.Seed, "training"))
        let report = domain.Train model options device (Progress(fun d t m -> Progress.report "train model" d t m))
        model.eval() |> ignore
        let accuracy = domain.Accuracy model device
        Progress.say $"model: trained in {report.Seconds:F1}s, test accuracy {accuracy:P2}"
        let info = { Source = "trained"; TestAccuracy = accuracy; TrainingSeconds = report.Seconds; EpochLosses = Array.ofSeq report.EpochLosses; Parameters = parameters }
        Safetensors.SaveModule(model, weightsFile, readOnlyDict [ "architecture", Hashing.display spec.Model.Architecture; "test_accuracy", string accuracy ])
        Artefacts.writeJson infoFile info
        model, info

/// The seeded subset of test images that a run explains; keys are test-set indices.
let explainedIndices (spec: Spec) (testCount: int) =
    use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "explained-set")), torch.CPU)
    use order = torch.randperm(int64 testCount, generator = g)
    order.narrow(0L, 0L, int64 (min spec.Data.Explain testCount)).data<int64>().ToArray()

/// The engine's method for a spec's method kind (its registry entry builds it).
let methodOf (kind: MethodKind) (context: MethodContext) : IAttributionMethod = MethodRegistry.build context kind

/// Inputs per call of a method: bounds memory (maps, running sums) and paces the progress lines. Each call's maps are
/// kept in a part file until the whole step is stored, so an interrupted step resumes at its first missing call.
/// Methods that spend seconds on an input (per-input optimisations, walks, sampled surrogates) are called on fewer
/// inputs so that progress and parts come every few minutes; every method's map of an input is independent of its
/// batch (the conformance tests), so the size changes no number.
let private inputsPerCall (kind: MethodKind) = (MethodRegistry.facts kind).InputsPerCall

/// Maps, their diagnostics (stored as "diagnostic.NAME") and metadata in one safetensors file, written atomically.
let private saveMaps (file: string) (maps: Tensor) (diagnostics: seq<string * Tensor>) (metadata: (string * string) list) =
    let tensors = Dictionary<string, Tensor>()
    tensors.["maps"] <- maps
    for k, v in diagnostics do tensors.["diagnostic." + k] <- v
    Safetensors.Save(file, tensors, readOnlyDict metadata)

/// What saveMaps wrote, when the file is there and sound: the maps, the diagnostics by name, and the seconds they cost.
let private tryLoadMaps (file: string) =
    Artefacts.tryTensors file
    |> Option.map (fun stored ->
        let diagnostics = stored |> Seq.filter (fun kv -> kv.Key.StartsWith "diagnostic.") |> Seq.map (fun kv -> kv.Key.Substring 11, kv.Value) |> Seq.toList
        stored.["maps"], diagnostics, Safetensors.ReadMetadata(file).["seconds"] |> float)

/// The part file of one call: the step's hash, the call's first position and a hash of its rows (the rows depend on
/// the cached model's predictions when only misclassified rows are explained).
let partFile (stepHash: string) (start: int) (block: int[]) =
    let rows = Hashing.hash [ block |> Array.map string |> String.concat "," ] |> Hashing.short
    Artefacts.path "attributions" $"{stepHash}.part-{start}-{rows}" ".safetensors"

/// Maps for `rows` of the explained inputs, in calls of `perCall`, with progress and an estimate of the time left;
/// calls stored as parts by an interrupted run are loaded instead of recomputed. Returns the maps, the diagnostics,
/// the seconds the loaded parts had cost and the part files (the caller deletes them once the step is stored).
let private explainRows (name: string) (stepHash: string) (perCall: int) (m: IAttributionMethod) model (inputs: Tensor) (targets: int64[])
                        (keys: int64[]) (rows: int[]) (options: ExplainOptions) device =
    let maps = List<Tensor>()
    let diagnostics = Dictionary<string, List<Tensor>>()
    let parts = List<string>()
    let clock = Stopwatch.StartNew()
    let mutable resumedSeconds = 0.0
    let mutable computed = 0
    for start in 0 .. perCall .. rows.Length - 1 do
        use scope = torch.NewDisposeScope()
        let block = rows.[start .. min (start + perCall) rows.Length - 1]
        let file = partFile stepHash start block
        let blockMaps, blockDiagnostics =
            match tryLoadMaps file with
            | Some(maps, diagnostics, seconds) ->
                resumedSeconds <- resumedSeconds + seconds
                maps, diagnostics
            | None ->
                let callClock = Stopwatch.StartNew()
                let index = torch.tensor(block |> Array.map int64)
                let x = inputs.index_select(0L, index).``to``(device: torch.Device)
                let t = torch.tensor(block |> Array.map (fun r -> targets.[r])).``to``(device: torch.Device)
                use e = m.Explain(model, x, t, ExplainOptions(options.Output, options.BatchSize, options.Seed, block |> Array.map (fun r -> keys.[r])))
                let blockMaps = e.Maps.cpu()
                match nonFiniteRows blockMaps with
                | [||] -> ()
                | bad ->
                    let indices = bad |> Array.map (fun r -> keys.[block.[int r]])
                    raise (InputProblem($"{name}: the method's maps are not finite (NaN or infinity) for {bad.Length} of {block.Length} inputs "
                                        + $"(test-set indices {someOf indices}); nothing of them was cached. The method's parameters or the model's "
                                        + "outputs on these inputs make it overflow."))
                let blockDiagnostics = [ for KeyValue(k, v) in e.Diagnostics -> k, v.cpu() ]
                saveMaps file blockMaps blockDiagnostics [ "seconds", string callClock.Elapsed.TotalSeconds ]
                computed <- computed + block.Length
                blockMaps, blockDiagnostics
        parts.Add file
        maps.Add(blockMaps.MoveToOuterDisposeScope())
        for k, v in blockDiagnostics do
            if not (diagnostics.ContainsKey k) then diagnostics.[k] <- List<Tensor>()
            diagnostics.[k].Add(v.MoveToOuterDisposeScope())
        let finished = start + block.Length
        let left =
            if computed = 0 || finished >= rows.Length then ""
            else sprintf ", about %s left" (Progress.duration (clock.Elapsed.TotalSeconds / float computed * float (rows.Length - finished)))
        Progress.report name (int64 finished) (int64 rows.Length) ("inputs" + left)
    let cat (parts: List<Tensor>) = let all = torch.cat(parts.ToArray(), 0L) in (for p in parts do p.Dispose()); all
    cat maps, diagnostics |> Seq.map (fun kv -> kv.Key, cat kv.Value) |> dict, resumedSeconds, List.ofSeq parts

/// Loads a cached attribution artefact, or computes and stores it. For the predicted class, rows whose
/// prediction equals the label are copied from the ground-truth maps when those exist: the method's noise
/// depends on (method, input) only, so those maps are identical.
let private attribute (plan: Plan) (step: Step) (kind: MethodKind) (target: TargetKind) model (inputs: Tensor) (labels: int64[]) (predictions: int64[])
                      (keys: int64[]) (context: MethodContext) (groundTruthMaps: (Tensor * IDictionary<string, Tensor>) option) device =
    let file = Artefacts.path "attributions" step.Hash ".safetensors"
    match tryLoadMaps file with
    | Some(maps, diagnostics, seconds) -> maps, dict diagnostics, seconds, true
    | None ->
        let clock = Stopwatch.StartNew()
        let m = methodOf kind context
        let options = ExplainOptions(Output = outputOf plan.Spec,
                                     BatchSize = plan.Spec.Explain.BatchSize, Seed = methodSeed plan.Spec kind)
        let targets = match target with GroundTruth -> labels | Predicted -> predictions
        let all = [| 0 .. inputs.shape.[0] |> int |> fun n -> n - 1 |]
        let perCall = inputsPerCall kind
        let maps, diagnostics, resumed, parts =
            match target, groundTruthMaps with
            | Predicted, Some (gtMaps, gtDiagnostics) ->
                let differing = all |> Array.filter (fun r -> predictions.[r] <> labels.[r])
                let maps = gtMaps.clone()
                let diagnostics = gtDiagnostics |> Seq.map (fun kv -> kv.Key, kv.Value.clone()) |> dict
                if differing.Length > 0 then
                    let newMaps, newDiagnostics, resumed, parts = explainRows step.Name step.Hash perCall m model inputs targets keys differing options device
                    let index = torch.tensor(differing |> Array.map int64)
                    maps.index_copy_(0L, index, newMaps) |> ignore
                    for KeyValue(k, v) in newDiagnostics do diagnostics.[k].index_copy_(0L, index, v) |> ignore
                    maps, diagnostics, resumed, parts
                else maps, diagnostics, 0.0, []
            | _ -> explainRows step.Name step.Hash perCall m model inputs targets keys all options device
        let seconds = clock.Elapsed.TotalSeconds + resumed
        saveMaps file maps [ for KeyValue(k, v) in diagnostics -> k, v ] [ "method", m.Describe(); "target", targetName target; "seconds", string seconds ]
        for part in parts do File.Delete part
        maps, diagnostics, seconds, false

let private negativePerturbation (plan: Plan) (step: Step) (np: NegativePerturbationSpec) (domain: Domain.Domain) model (rows: int64[]) (labels: int64[]) (predictions: int64[])
                                 (maps: IDictionary<TargetKind, Tensor>) device =
    let file = Artefacts.path "metrics" step.Hash ".json"
    fst <| Artefacts.jsonOrCompute file (fun () ->
        let seed = Seeds.Derive(int64 plan.Spec.Seed, "negative_perturbation")
        let labelTensor = torch.tensor(labels)
        let predictionTensor = torch.tensor(predictions)
        let curve name (targetMaps: Tensor) (reference: Tensor) =
            use masked = domain.MaskedPredictions model rows targetMaps np.Fractions np.MaskValue seed device
            let values = Attribution.Metrics.NegativePerturbation.AgreementPercent(masked, reference)
            { Name = name; Values = values; Auc = Attribution.Metrics.Auc.Trapezoid(Array.ofList np.Fractions, values) }
        Progress.say $"{step.Name}: masking {np.Fractions.Length} fractions of {labels.Length} inputs"
        let curves =
            [| match maps.TryGetValue GroundTruth with
               | true, m -> yield curve "accuracy_gt" m labelTensor
               | _ -> ()
               match maps.TryGetValue Predicted with
               | true, m ->
                   yield curve "accuracy_predicted" m labelTensor
                   yield curve "consistency" m predictionTensor
               | _ -> () |]
        { Fractions = Array.ofList np.Fractions; Curves = curves })

let private rankAgreement (step: Step) (maps: IReadOnlyDictionary<string * TargetKind, Tensor>) (methods: string list) (target: TargetKind) =
    let file = Artefacts.path "metrics" step.Hash ".json"
    fst <| Artefacts.jsonOrCompute file (fun () ->
        let flat id = let m = maps.[(id, target)] in m.reshape(m.shape.[0], -1L).``to``(torch.ScalarType.Float32).data<float32>().ToArray(), int m.shape.[0]
        [| for i, a in List.indexed methods do
             for b in List.skip (i + 1) methods do
                 let da, n = flat a
                 let db, _ = flat b
                 let d = da.Length / n
                 let values = [| for r in 0 .. n - 1 -> RankCorrelation.Spearman(ArraySegment(da, r * d, d), ArraySegment(db, r * d, d)) |] |> Array.filter (Double.IsNaN >> not)
                 yield { A = a; B = b; Spearman = (if values.Length = 0 then nan else Array.average values); Inputs = values.Length } |])

let private meanCurve (rows: double[][]) =
    if rows.Length = 0 then [||] else Array.init rows.[0].Length (fun j -> rows |> Array.averageBy (fun r -> r.[j]))

/// Inputs [B, C, H, W] with the `fraction` most important pixels of each (by the map summed over channels, ties
/// broken by a seeded random order) replaced by `fill` [1, C, 1, 1].
let removeMostImportant (inputs: Tensor) (maps: Tensor) (fraction: float) (fill: Tensor) (seed: int64) =
    use scope = torch.NewDisposeScope()
    let b, h, w = inputs.shape.[0], inputs.shape.[2], inputs.shape.[3]
    let p = h * w
    let scores = maps.cpu().``to``(torch.ScalarType.Float64).sum([| 1L |]).reshape(b, p)
    use g = new torch.Generator(uint64 seed, torch.CPU)
    let shuffle = torch.rand([| b; p |], generator = g).argsort(1L)
    let order = shuffle.gather(1L, scores.gather(1L, shuffle).argsort(1L, descending = true))
    let k = int64 (Math.Round(fraction * float p))
    let mask = torch.zeros([| b; p |], dtype = torch.ScalarType.Bool)
    if k > 0L then mask.scatter_(1L, order.narrow(1L, 0L, k), torch.ones([| b; k |], dtype = torch.ScalarType.Bool)) |> ignore
    torch.where(mask.reshape(b, 1L, h, w), fill.cpu().expand_as(inputs), inputs.cpu()).MoveToOuterDisposeScope()

/// ROAR: for each fraction, a fresh model (same initialisation every time) trained on the masked training subset
/// and tested on the masked explained inputs; each point is cached on its own, so an interrupted ROAR resumes.
let private roar (plan: Plan) (step: Step) (r: RoarSpec) (kind: MethodKind) (domain: Domain.Domain) (network: torch.nn.Module<Tensor, Tensor>)
                 (model: torch.nn.Module<Tensor, Tensor>) (testInputs: Tensor) (testMaps: Tensor) (testLabels: int64[]) (context: MethodContext) device =
    let spec = plan.Spec
    let seed = Seeds.Derive(int64 spec.Seed, "roar")
    let rows =
        use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "roar/train-subset")), torch.CPU)
        use order = torch.randperm(int64 domain.TrainCount, generator = g)
        order.narrow(0L, 0L, int64 (min r.TrainInputs domain.TrainCount)).data<int64>().ToArray()
    let trainInputs = domain.Inputs network true rows
    let trainLabels = domain.TrainLabels.index_select(0L, torch.tensor(rows))
    let fill = trainInputs.mean([| 0L; 2L; 3L |], keepdim = true)
    // Maps of the training subset, explaining each input's label; cached with the step.
    let trainMapsFile = Artefacts.path "attributions" (roarTrainMapsKey step) ".safetensors"
    let trainMaps =
        match Artefacts.tryTensors trainMapsFile with
        | Some stored -> stored.["maps"]
        | None ->
            let options = ExplainOptions(Output = outputOf spec,
                                         BatchSize = spec.Explain.BatchSize, Seed = methodSeed spec kind)
            let partsKey = roarTrainMapsKey step
            let maps, _, _, parts =
                explainRows $"{step.Name} (training inputs)" partsKey (inputsPerCall kind) (methodOf kind context) model trainInputs
                            (trainLabels.data<int64>().ToArray()) rows [| 0 .. rows.Length - 1 |] options device
            Safetensors.Save(trainMapsFile, readOnlyDict [ "maps", maps ], readOnlyDict [ "step", step.Name ])
            for part in parts do File.Delete part
            maps
    let accuracy (name: string) (hashParts: string list) (trainScores: Tensor) (testScores: Tensor) (fraction: float) =
        let file = Artefacts.path "metrics" (roarPointKey plan r fraction hashParts) ".json"
        fst <| Artefacts.jsonOrCompute file (fun () ->
            use scope = torch.NewDisposeScope()
            let maskedTrain = removeMostImportant trainInputs trainScores fraction fill (Seeds.Derive(seed, "train"))
            let maskedTest = removeMostImportant testInputs testScores fraction fill (Seeds.Derive(seed, "test"))
            torch.manual_seed (Seeds.Derive(seed, "init")) |> ignore
            let fresh = domain.NewModel()
            let retrained = domain.Explained fresh
            let options = TrainingOptions(r.Epochs, spec.Model.BatchSize, spec.Model.LearningRate, Seeds.Derive(seed, "training"))
            Training.Train(retrained, maskedTrain, trainLabels, (fun x -> retrained.forward x), options, device) |> ignore
            let predicted = Training.Logits(retrained, maskedTest, device).argmax(1L).data<int64>().ToArray()
            fresh.Dispose()
            let value = 100.0 * float (Array.zip predicted testLabels |> Array.filter (fun (a, b) -> a = b) |> Array.length) / float testLabels.Length
            Progress.say $"{step.Name}: {name} at {fraction}: {value:F2}%%"
            value)
    let fractions = 0.0 :: r.Fractions
    let ours = fractions |> List.map (fun f -> if f = 0.0 then accuracy "nothing removed" [] trainMaps testMaps 0.0 else accuracy "method" [ step.Hash ] trainMaps testMaps f)
    use g = new torch.Generator(uint64 (Seeds.Derive(seed, "random-ranking")), torch.CPU)
    let randomTrain = torch.rand(trainMaps.shape, generator = g)
    let randomTest = torch.rand(testMaps.shape, generator = g)
    let random = fractions |> List.map (fun f -> if f = 0.0 then List.head ours else accuracy "random ranking" [ "random" ] randomTrain randomTest f)
    Array.ofList fractions, Array.ofList ours, Array.ofList random

/// A per-method metric (insertion/deletion, Sensitivity-N, randomisation, certainty) on the maps of the
/// explained class, cached as JSON by the step's hash.
let private methodMetric (plan: Plan) (step: Step) (metric: MetricSpec) (kind: MethodKind) (model: torch.nn.Module<Tensor, Tensor>)
                         (inputs: Tensor) (maps: Tensor) (classes: int64[]) (labels: int64[]) (boxes: IReadOnlyList<Attribution.Data.Box> option) (context: MethodContext)
                         (domain: Domain.Domain) (network: torch.nn.Module<Tensor, Tensor>) (rows: int64[]) device =
    // Text: the explained rows' tokens and real lengths, and each token's score (the sum over its embedding coordinates).
    let tokensOf () =
        match domain.View rows, network with
        | Domain.TextView(tokens, lengths, _), (:? Attribution.Models.TextModel as text) ->
            let scores = Attribution.Methods.TokenScores.Sum(maps.reshape(maps.shape.[0], tokens.shape.[1], -1L), lengths)
            text, tokens, lengths, scores
        | _ -> failwith "token metrics need a text dataset and a text model"
    let file = Artefacts.path "metrics" step.Hash ".json"
    fst <| Artefacts.jsonOrCompute file (fun () ->
        let name = Catalogue.metricName metric
        let seed = Seeds.Derive(int64 plan.Spec.Seed, name)
        let targets = torch.tensor(classes)
        let result scalars xLabel x curves = { Metric = name; Method = List.head step.Methods; Scalars = scalars; XLabel = xLabel; X = x; Curves = curves }
        let value n v = { Name = n; Value = v }
        Progress.say $"{step.Name}: {classes.Length} inputs"
        match metric with
        | InsertionDeletion _ when domain.Modality = Modality.Text ->
            let text, tokens, lengths, scores = tokensOf ()
            let r = Attribution.Metrics.TokenInsertionDeletion().Evaluate(text, tokens, lengths, scores, targets, seed, device, plan.Spec.Explain.BatchSize)
            result [| value "deletion" r.Deletion.MeanAuc; value "insertion" r.Insertion.MeanAuc; value "difference" r.Difference |]
                   "fraction of the input's tokens changed to <unk> (most important first)" r.Deletion.Fractions
                   [| { Name = "deletion"; Values = meanCurve r.Deletion.Curves; Auc = r.Deletion.MeanAuc }
                      { Name = "insertion"; Values = meanCurve r.Insertion.Curves; Auc = r.Insertion.MeanAuc } |]
        | SensitivityN(masks, points) when domain.Modality = Modality.Text ->
            let text, tokens, lengths, scores = tokensOf ()
            // N on the log grid up to 80% of the median real length; inputs with at most N tokens are skipped at that N.
            let sizes = Attribution.Metrics.TokenSensitivityN.DefaultSizes(lengths, points)
            let r = Attribution.Metrics.TokenSensitivityN(sizes, masks).Evaluate(text, tokens, lengths, scores, targets, seed, device, plan.Spec.Explain.BatchSize)
            let valid = r.MeanCorrelation |> Array.filter (Double.IsNaN >> not)
            result [| value "mean_correlation" (if valid.Length = 0 then nan else Array.average valid) |] "N (tokens set to <unk>)" (r.Sizes |> Array.map _.X)
                   [| { Name = "correlation"; Values = r.MeanCorrelation; Auc = nan } |]
        | InsertionDeletion(pixels, sigma) ->
            let metric = Attribution.Metrics.InsertionDeletion(Nullable pixels)
            let averaged = metric.EvaluateBlackAndBlurred(model, inputs, maps, targets, seed, device, sigma)
            let rounds = averaged.Rounds |> Seq.toArray
            let fractions = rounds.[0].Deletion.Fractions
            let scalars =
                [| for r in rounds do
                     yield value $"deletion_{r.Substrate}" r.Deletion.MeanAuc
                     yield value $"insertion_{r.Substrate}" r.Insertion.MeanAuc
                     yield value $"difference_{r.Substrate}" r.Difference
                   yield value "deletion" averaged.Deletion
                   yield value "insertion" averaged.Insertion
                   yield value "difference" averaged.Difference |]
            let curves =
                [| for r in rounds do
                     yield { Name = $"deletion_{r.Substrate}"; Values = meanCurve r.Deletion.Curves; Auc = r.Deletion.MeanAuc }
                     yield { Name = $"insertion_{r.Substrate}"; Values = meanCurve r.Insertion.Curves; Auc = r.Insertion.MeanAuc } |]
            result scalars "fraction of pixels changed (most important first)" fractions curves
        | SensitivityN(masks, points) ->
            let features = int (inputs.shape.[2] * inputs.shape.[3])
            let grid = Attribution.Metrics.SensitivityN.LogGrid(features, points)
            let r = Attribution.Metrics.SensitivityN(grid, masks).Evaluate(model, inputs, maps, targets, seed, device)
            let valid = r.MeanCorrelation |> Array.filter (Double.IsNaN >> not)
            result [| value "mean_correlation" (if valid.Length = 0 then nan else Array.average valid) |] "N (pixels masked)" (r.N |> Array.map float)
                   [| { Name = "correlation"; Values = r.MeanCorrelation; Auc = nan } |]
        | ParameterRandomisation count ->
            let n = min count (int inputs.shape.[0])
            // Seen through an identity view, any layered model fits the cascade's generic signature.
            let shape = inputs.shape |> Array.skip 1
            let view (network: torch.nn.Module<Tensor, Tensor>) : Attribution.Models.ReshapedModel =
                match box network with
                | :? Attribution.Models.ILayeredModel -> new Attribution.Models.ReshapedModel(network, shape, shape)
                | _ -> failwith $"parameter_randomisation needs a model that can be cut into stages; {network.GetType().Name} cannot"
            let options = ExplainOptions(Output = outputOf plan.Spec,
                                         BatchSize = plan.Spec.Explain.BatchSize, Seed = methodSeed plan.Spec kind)
            let stages =
                Attribution.Metrics.ParameterRandomisation().Run<Attribution.Models.ReshapedModel>(view model, (fun () -> view (domain.NewModel())), methodOf kind context,
                                                                 inputs.narrow(0L, 0L, int64 n).``to``(device: torch.Device), targets.narrow(0L, 0L, int64 n).``to``(device: torch.Device), options, seed)
                |> Seq.toArray
            let last = Array.last stages
            result [| value "final_ssim" last.MeanSsim; value "final_spearman" last.MeanSpearman |]
                   ("stages randomised from the output: " + (stages |> Array.map (fun s -> s.Stage) |> String.concat ", ")) (Array.init stages.Length (fun i -> float (i + 1)))
                   [| { Name = "ssim"; Values = stages |> Array.map (fun s -> s.MeanSsim); Auc = nan }
                      { Name = "spearman"; Values = stages |> Array.map (fun s -> s.MeanSpearman); Auc = nan } |]
        | ExplanationCertainty pairs ->
            let mi = Attribution.Information.MutualInformation.PixelwiseExplanationCertainty(inputs, maps, pairs, 3, seed)
            result [| value "mutual_information_nats" mi |] "" [||] [||]
        | EffectiveHeatRatio ->
            let boxes = boxes |> Option.defaultWith (fun () -> failwith "effective_heat_ratio needs a dataset with boxes (fashion_canvas)")
            let r = Attribution.Metrics.EffectiveHeatRatio().Evaluate(maps, boxes)
            let scored = r.Ehr |> Array.filter (Double.IsNaN >> not)
            let meanRatio = Array.init r.Quantiles.Length (fun q -> r.Ratios |> Array.filter (fun row -> row.Length > q && not (Double.IsNaN row.[q])) |> fun rows -> if rows.Length = 0 then nan else rows |> Array.averageBy (fun row -> row.[q]))
            result [| value "ehr" r.Mean; value "inputs_scored" (float scored.Length); value "inputs_excluded" (float r.Excluded) |]
                   "quantile threshold" (Array.ofSeq r.Quantiles) [| { Name = "heat_ratio"; Values = meanRatio; Auc = r.Mean } |]
        | TaylorFidelity count ->
            let n = min count (int inputs.shape.[0])
            // The spec's output function: a ReLU network's logit is piecewise linear, so its second-order terms vanish.
            let options = ExplainOptions(Output = outputOf plan.Spec,
                                         BatchSize = plan.Spec.Explain.BatchSize, Seed = methodSeed plan.Spec kind)
            use report = Attribution.Methods.TaylorFidelity.Assess(methodOf kind context, model, inputs.narrow(0L, 0L, int64 n).``to``(device: torch.Device),
                                                                   targets.narrow(0L, 0L, int64 n).``to``(device: torch.Device), options)
            let mean (t: Tensor) = t.``to``(torch.ScalarType.Float64).mean().item<float>()
            let relative (e: Tensor) (scale: Tensor) = mean (e.``to``(torch.ScalarType.Float64) / scale.``to``(torch.ScalarType.Float64).clamp_min(1e-12))
            result [| value "approximation_error" (mean report.ApproximationError)
                      value "independent_error_relative" (relative report.IndependentError report.IndependentScale)
                      value "interactive_error_relative" (relative report.InteractiveError report.InteractiveScale)
                      value "inputs" (float n) |] "" [||] [||]
        | TwoWord pairs ->
            let _, test = domain.Speech |> Option.defaultWith (fun () -> failwith "two_word needs data.dataset speech_commands")
            let right, cat = test.ClassOf "right", test.ClassOf "cat"
            use utterances = Attribution.Metrics.TwoWordAttribution.Pairs(test, right, cat, pairs, seed)
            let n, length = utterances.shape.[0], utterances.shape.[2]
            // The 2 s utterances seen as frames, like every audio input; class covariances re-wrapped for twice the frames.
            let frames = Domain.framesOf length
            let longModel = new Attribution.Models.ReshapedModel(network, [| 1L; length |], frames)
            let longContext =
                { context with
                    Structured = fun _ _ -> failwith "two_word takes covariance_gaussian with structure shared_across_channels only"
                    Model = longModel
                    Covariances =
                        context.Covariances |> Seq.map (fun kv -> kv.Key, Attribution.Sampling.ClassCovariance.FromCovariances(kv.Value.Covariances, frames.[0], 1L, frames.[2], 0.0)) |> dict }
            let x = utterances.reshape(Array.append [| n |] frames)
            let inputs = torch.cat([| x; x |], 0L).``to``(device: torch.Device)
            let classes = torch.tensor(Array.append (Array.create (int n) (int64 right)) (Array.create (int n) (int64 cat))).``to``(device: torch.Device)
            let keys = Array.init (int n) int64
            let options = ExplainOptions(Output = outputOf plan.Spec,
                                         BatchSize = plan.Spec.Explain.BatchSize, Seed = methodSeed plan.Spec kind, InputKeys = Array.append keys keys)
            use explanation = (methodOf kind longContext).Explain(longModel, inputs, classes, options)
            let maps = explanation.Maps.reshape(2L * n, 1L, length)
            let rightShare = Attribution.Metrics.TwoWordAttribution.MassBefore(maps.narrow(0L, 0L, n), length / 2L)
            let catShare = Attribution.Metrics.TwoWordAttribution.MassBefore(maps.narrow(0L, n, n), length / 2L) |> Array.map (fun f -> 1.0 - f)
            let predicted = Training.Logits(longModel, x, device)
            let bothTop2 =
                let struct (_, top) = predicted.topk(2, 1)
                let t = top.data<int64>().ToArray()
                [| for i in 0 .. int n - 1 -> let row = t.[2 * i .. 2 * i + 1] in Array.contains (int64 right) row && Array.contains (int64 cat) row |]
                |> Array.filter id |> Array.length
            result [| value "right_share_on_first_word" (Array.average rightShare); value "cat_share_on_second_word" (Array.average catShare)
                      value "min_right_share" (Array.min rightShare); value "min_cat_share" (Array.min catShare)
                      value "pairs" (float n); value "pairs_with_both_words_in_top2" (float bothTop2) |] "" [||] [||]
        | Roar r ->
            let x, ours, random = roar plan step r kind domain network model inputs maps labels context device
            let mean (v: float[]) = Array.average v.[1..]
            result [| value "accuracy_nothing_removed" ours.[0]; value "mean_accuracy_removed" (mean ours); value "mean_accuracy_random" (mean random) |]
                   "fraction of the most important pixels removed (retrained each time)" x
                   [| { Name = "accuracy"; Values = ours; Auc = nan }; { Name = "accuracy_random_ranking"; Values = random; Auc = nan } |]
        | NegativePerturbation _ | RankAgreement -> failwith "not a per-method metric")

let private logSobolev (methodId: string) (target: TargetKind) (diagnostics: IDictionary<string, Tensor>) =
    match diagnostics.TryGetValue "entropy", diagnostics.TryGetValue "half_fisher_information" with
    | (true, ent), (true, half) ->
        let e = ent.``to``(torch.ScalarType.Float64).data<float>().ToArray()
        let h = half.``to``(torch.ScalarType.Float64).data<float>().ToArray()
        let ratios = Array.zip e h |> Array.filter (fun (_, hh) -> hh > 0.0) |> Array.map (fun (ee, hh) -> ee / hh) |> Array.sort
        Some { Method = methodId; Target = targetName target; MeanEntropy = Array.average e; MeanHalfFisher = Array.average h
               HoldsFraction = (Array.zip e h |> Array.filter (fun (ee, hh) -> ee <= hh) |> Array.length |> float) / float e.Length
               MedianRatio = if ratios.Length = 0 then nan else ratios.[ratios.Length / 2] }
    | _ -> None

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

/// Runs every step of the plan on `device`.
let run (plan: Plan) (device: torch.Device) : RunOutput =
    let spec = plan.Spec
    Progress.say $"device: {TorchRuntime.Describe device}"
    let domain = Domain.load spec
    Progress.say $"data: {domain.TrainCount} training and {domain.TestCount} test inputs"
    if spec.Methods |> List.exists (fun m -> Plan.usesClassCovariance m.Kind) then requireTwoPerClass spec domain
    let network, modelInfo = provideModel plan domain device
    // What methods and metrics call: the network seen on method inputs [N, C, H, W].
    let model = domain.Explained network
    let indices = explainedIndices spec domain.TestCount
    let inputs = domain.Inputs network false indices
    let labels = domain.TestLabels.index_select(0L, torch.tensor(indices)).data<int64>().ToArray()
    let logits = Training.Logits(model, inputs, device)
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
    let structured = Dictionary<string, Attribution.Sampling.ICovarianceModel>()
    let structuredOf (jitter: float) (structure: Attribution.Sampling.CovarianceStructure) =
        let key = $"{structure.Name}/{jitter}"
        match structured.TryGetValue key with
        | true, m -> m
        | _ ->
            if domain.Modality <> Modality.Image then failwith $"covariance structure {structure.Name} is for images; text and audio use shared_across_channels"
            Progress.say $"covariance: estimating {domain.ClassNames.Length} class covariances, structure {structure.Name}"
            let all = Array.init domain.TrainCount int64
            use images = domain.Inputs network true all
            let m = Attribution.Sampling.CovarianceModels.Estimate(images, domain.TrainLabels, domain.ClassNames.Length, structure, jitter, device)
            structured.[key] <- m
            m
    let context = { Covariances = covariances; References = references; Model = model; Structured = structuredOf }
    let maps = Dictionary<string * TargetKind, Tensor>()
    let diagnostics = Dictionary<string * TargetKind, IDictionary<string, Tensor>>()
    let timings = List<AttributionTiming>()
    let npResults = List<MethodCurves>()
    let mutable rankPairs = [||]
    let metricResults = List<MetricResult>()
    for step in plan.Steps do
        match step.Kind with
        | ProvideModel -> ()
        | EstimateCovariance jitter ->
            Progress.say $"{step.Name}: estimating {domain.ClassNames.Length} class covariances from {domain.TrainCount} training inputs"
            covariances.[jitter] <- domain.Covariance network jitter device
        | Attribute(kind, target) ->
            let first = List.head step.Methods
            let gt = if target = Predicted && maps.ContainsKey((first, GroundTruth)) then Some(maps.[(first, GroundTruth)], diagnostics.[(first, GroundTruth)]) else None
            let m, d, seconds, cached = attribute plan step kind target model inputs labels predictions indices context gt device
            for id in step.Methods do
                maps.[(id, target)] <- m
                diagnostics.[(id, target)] <- d
                timings.Add { Method = id; Target = targetName target; Seconds = seconds; Inputs = labels.Length; Cached = cached }
            Progress.say $"""{step.Name}: {(if cached then "cached" else sprintf "%.1fs" seconds)}"""
        | EvaluateNegativePerturbation np ->
            let first = List.head step.Methods
            let byTarget = spec.Explain.Targets |> List.map (fun t -> t, maps.[(first, t)]) |> dict
            let result = negativePerturbation plan step np domain network indices labels predictions byTarget device
            for id in step.Methods do npResults.Add { Method = id; Result = result }
        | EvaluateMethodMetric metric ->
            let first = List.head step.Methods
            let target = if List.contains Predicted spec.Explain.Targets then Predicted else GroundTruth
            let classes = match target with Predicted -> predictions | GroundTruth -> labels
            let kind = (spec.Methods |> List.find (fun m -> m.Id = first)).Kind
            let explainedBoxes = domain.Boxes |> Option.map (fun b -> indices |> Array.map (fun i -> b.[int i]) :> IReadOnlyList<_>)
            let result = methodMetric plan step metric kind model inputs maps.[(first, target)] classes labels explainedBoxes context domain network indices device
            for id in step.Methods do metricResults.Add { result with Method = id }
        | EvaluateRankAgreement ->
            let target = if List.contains Predicted spec.Explain.Targets then Predicted else GroundTruth
            rankPairs <- rankAgreement step maps step.Methods target
    let certificates =
        [| for KeyValue((id, target), d) in diagnostics do
             match logSobolev id target d with Some c -> yield c | None -> () |]
    { Result = { Model = modelInfo; Explained = labels.Length; ExplainedIndices = indices; NegativePerturbation = npResults.ToArray()
                 RankAgreement = rankPairs; LogSobolev = certificates; Metrics = metricResults.ToArray(); Timings = timings.ToArray() }
      Images = inputs; Labels = labels; Predictions = predictions; ClassNames = domain.ClassNames
      View = domain.View indices; Maps = maps; Diagnostics = diagnostics; Device = string device }
