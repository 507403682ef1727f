/// Metric steps: negative perturbation, rank agreement, ROAR and the per-method metrics, each read from the cache or
/// computed and stored as a sealed JSON artefact under its step's hash.
module Experiments.MetricSteps

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

/// Inputs per block when a metric reads a step's maps block by block: a multiple of every chunk size the engine's metric
/// batches by (`chunks`), near `target`, so that each block's chunks are the chunks of the whole set and the numbers
/// are those of the whole set at once.
let private alignedBlock (chunks: int64 list) (target: int) =
    let rec gcd (a: int64) (b: int64) = if b = 0L then a else gcd b (a % b)
    let lcm = chunks |> List.fold (fun acc c -> acc / gcd acc c * c) 1L
    int (lcm * max 1L (int64 target / lcm))

/// Inputs per block of the metrics whose engine batches by 1,024 images (negative perturbation, the model's logits).
let private npBlock = alignedBlock [ 1024L ] 1024

let negativePerturbation (plan: Plan) (step: Step) (np: NegativePerturbationSpec) (domain: Domain.Domain) model (rows: int64[]) (labels: int64[]) (predictions: int64[])
                                 (maps: IDictionary<TargetKind, StoredMaps>) device =
    let file = Artefacts.path "metrics" step.Hash ".json"
    fst <| Artefacts.jsonOrCompute file (fun () ->
        let seed = Seeds.Derive(int64 plan.Spec.Seed, "negative_perturbation")
        let labelTensor = torch.tensor(labels)
        let predictionTensor = torch.tensor(predictions)
        let fractions = Array.ofList np.Fractions
        // Masked a block of inputs at a time; one tie-breaking generator runs through the blocks as through the whole set.
        let maskedPredictions (stored: StoredMaps) =
            use tieBreak = new torch.Generator(uint64 seed, torch.CPU)
            let parts =
                stored.MapBlocks(npBlock, fun first n block ->
                    domain.MaskedPredictions model rows.[first .. first + n - 1] block np.Fractions np.MaskValue tieBreak device)
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
                   use masked = maskedPredictions m
                   yield curve "accuracy_gt" masked labelTensor
               | _ -> ()
               match maps.TryGetValue Predicted with
               | true, m ->
                   // one masking of the predicted class's maps, read against the labels and against the predictions
                   use masked = maskedPredictions m
                   yield curve "accuracy_predicted" masked labelTensor
                   yield curve "consistency" masked predictionTensor
               | _ -> () |]
        { Fractions = fractions; Curves = curves |> Array.map (fun (c, _, _) -> c); Intervals = curves |> Array.map (fun (_, i, _) -> i)
          PerInput = curves |> Array.map (fun (_, _, p) -> p) })

/// Spearman correlation of every pair of methods' maps, input by input, reading both steps' maps a block at a time.
let rankAgreement (step: Step) (maps: IReadOnlyDictionary<string * TargetKind, StoredMaps>) (methods: string list) (target: TargetKind) =
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

let private meanCurve (rows: double[][]) =
    if rows.Length = 0 then [||] else Array.init rows.[0].Length (fun j -> rows |> Array.averageBy (fun r -> r.[j]))

/// Percent of true values: a ROAR point's accuracy, as the engine's Roar.Accuracy computes it.
let private roarPercent (right: bool[]) = 100.0 * float (right |> Array.filter id).Length / float right.Length

/// ROAR (the algorithm is the engine's Roar): the training subset and its maps, the retraining, and each point read from
/// the cache or computed and stored on its own, so an interrupted ROAR resumes.
let roar (plan: Plan) (step: Step) (r: RoarSpec) (kind: MethodKind) (domain: Domain.Domain) (network: torch.nn.Module<Tensor, Tensor>)
                 (model: torch.nn.Module<Tensor, Tensor>) (testInputs: Tensor) (testMaps: Tensor) (testLabels: int64[]) (context: MethodContext) device =
    let spec = plan.Spec
    let seed = Seeds.Derive(int64 spec.Seed, "roar")
    let rows =
        use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "roar/train-subset")), torch.CPU)
        use order = torch.randperm(int64 domain.TrainCount, generator = g)
        order.narrow(0L, 0L, int64 (min r.TrainInputs domain.TrainCount)).data<int64>().ToArray()
    let trainInputs = domain.Inputs network true rows
    let trainLabels = domain.TrainLabels.index_select(0L, torch.tensor(rows))
    let fill = Attribution.Metrics.Roar.ChannelMean trainInputs
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
    // A fresh model from the same initialisation every time, trained on the masked training subset.
    let retrain =
        RoarRetraining(fun maskedTrain maskedTest ->
            torch.manual_seed (Seeds.Derive(seed, "init")) |> ignore
            use fresh = domain.NewModel()
            let retrained = domain.Explained fresh
            let options = TrainingOptions(r.Epochs, spec.Model.BatchSize, spec.Model.LearningRate, Seeds.Derive(seed, "training"))
            Training.Train(retrained, maskedTrain, trainLabels, (fun x -> retrained.forward x), options, device) |> ignore
            Training.Logits(retrained, maskedTest, device))
    // A point is which test inputs its retrained model predicts right (the accuracy is their percent).
    let correct (name: string) (hashParts: string list) (trainScores: Tensor) (testScores: Tensor) (fraction: float) : bool[] =
        let file = Artefacts.path "metrics" (roarPointKey plan r fraction hashParts) ".json"
        fst <| Artefacts.jsonOrCompute file (fun () ->
            let right = Attribution.Metrics.Roar.Correct(trainInputs, trainScores, testInputs, testScores, testLabels, fill, fraction, seed, retrain)
            Progress.say $"{step.Name}: {name} at {fraction}: {roarPercent right:F2}%%"
            right)
    let fractions = 0.0 :: r.Fractions
    let ours = fractions |> List.map (fun f -> if f = 0.0 then correct "nothing removed" [] trainMaps testMaps 0.0 else correct "method" [ step.Hash ] trainMaps testMaps f)
    let struct (randomTrain, randomTest) = Attribution.Metrics.Roar.RandomScores(trainMaps.shape, testMaps.shape, Seeds.Derive(seed, "random-ranking"))
    let random = fractions |> List.map (fun f -> if f = 0.0 then List.head ours else correct "random ranking" [ "random" ] randomTrain randomTest f)
    Array.ofList fractions, Array.ofList ours, Array.ofList random

/// A per-method metric (insertion/deletion, Sensitivity-N, randomisation, certainty) on the maps of the
/// explained class, cached as JSON by the step's hash. Insertion/deletion, Sensitivity-N (images, text, audio) and EHR read
/// the maps a block of inputs at a time (the numbers are those of the whole set: see alignedBlock), and so does
/// explanation certainty (its sampled pairs gathered block by block); ROAR and a user's engine metric read them whole.
let methodMetric (plan: Plan) (step: Step) (metric: MetricSpec) (kind: MethodKind) (model: torch.nn.Module<Tensor, Tensor>)
                         (inputs: Tensor) (stored: StoredMaps) (classes: int64[]) (labels: int64[]) (boxes: IReadOnlyList<Attribution.Data.IRegion> option) (context: MethodContext)
                         (domain: Domain.Domain) (network: torch.nn.Module<Tensor, Tensor>) (rows: int64[]) device =
    // Text: the model and the explained rows' tokens and real lengths.
    let textOf () =
        match domain.View rows, network with
        | Domain.TextView(tokens, lengths, _), (:? Attribution.Models.TextModel as text) -> text, tokens, lengths
        | _ -> failwith "token metrics need a text dataset and a text model"
    // A block of texts: their tokens, real lengths and each token's score (the sum over its embedding coordinates).
    let tokenBlock (tokens: Tensor) (lengths: Tensor) (first: int) (n: int) (maps: Tensor) =
        let t, l = tokens.narrow(0L, int64 first, int64 n), lengths.narrow(0L, int64 first, int64 n)
        t, l, Attribution.Methods.TokenScores.Sum(maps.reshape(int64 n, tokens.shape.[1], -1L), l)
    let file = Artefacts.path "metrics" step.Hash ".json"
    fst <| Artefacts.jsonOrCompute file (fun () ->
        let name = Catalogue.metricName metric
        let seed = Seeds.Derive(int64 plan.Spec.Seed, name)
        let targets = torch.tensor(classes)
        let result scalars xLabel x curves = { Metric = name; Method = List.head step.Methods; Scalars = scalars; XLabel = xLabel; X = x; Curves = curves; Intervals = [||]; PerInput = [||] }
        // Each input's values behind the reported ones (Results.PerInput), for `attribution export`.
        let withPerInput (values: PerInput list) (r: MetricResult) = { r with PerInput = Array.append r.PerInput (Array.ofList values) }
        // One input's correlation at each point of a correlation curve (undefined where either side is constant).
        let correlationsPerPoint (label: string) (x: float[]) (correlations: float[][]) =
            [ for k, row in Array.indexed correlations ->
                { Name = $"correlation/{label}={x.[k].ToString(Globalization.CultureInfo.InvariantCulture)}"; Values = row
                  Summarises = $"curve correlation at {k}"; Reduction = PerInputs.MeanOfDefined } ]
        // The interval of a statistic of the inputs that is not a plain mean over them, by resampling the inputs.
        let withStatistic (scalar: string) (count: int) (statistic: int[] -> float) (r: MetricResult) =
            let ci = Attribution.Metrics.Bootstrap.StatisticInterval(count, Func<int[], float> statistic, Seeds.Derive(int64 plan.Spec.Seed, $"bootstrap/{name}/{List.head step.Methods}/{scalar}"))
            { r with Intervals = Array.append r.Intervals [| Intervals.named scalar ci |] }
        // Sensitivity-N's scalar: over the sizes, the mean over the inputs whose correlation is defined (of a resample).
        let meanOfMeans (correlations: float[][]) (rows: int[]) =
            let perSize =
                correlations |> Array.choose (fun perInput ->
                    let defined = rows |> Array.map (fun i -> perInput.[i]) |> Array.filter (Double.IsNaN >> not)
                    if defined.Length = 0 then None else Some(Array.average defined))
            if perSize.Length = 0 then nan else Array.average perSize
        // Intervals of scalars that are means over inputs, from the per-input values (name, values).
        let withIntervals (perInput: (string * float[]) list) (r: MetricResult) =
            { r with Intervals = [| for n, values in perInput -> Intervals.ofInputs plan.Spec.Seed $"{name}/{List.head step.Methods}" n values |] }
        let value n v = { Name = n; Value = v }
        // One round of insertion/deletion (text, audio: one substrate) as the report holds it.
        let oneRound (r: InsertionDeletionScores) (xLabel: string) =
            result [| value "deletion" r.Deletion.MeanAuc; value "insertion" r.Insertion.MeanAuc; value "difference" r.Difference |]
                   xLabel r.Deletion.Fractions
                   [| { Name = "deletion"; Values = meanCurve r.Deletion.Curves; Auc = r.Deletion.MeanAuc }
                      { Name = "insertion"; Values = meanCurve r.Insertion.Curves; Auc = r.Insertion.MeanAuc } |]
            |> withIntervals [ "deletion", r.Deletion.Auc; "insertion", r.Insertion.Auc; "difference", Array.map2 (-) r.Insertion.Auc r.Deletion.Auc ]
            |> withPerInput [ PerInputs.ofScalar "deletion" r.Deletion.Auc; PerInputs.ofScalar "insertion" r.Insertion.Auc
                              PerInputs.ofScalar "difference" (Array.map2 (-) r.Insertion.Auc r.Deletion.Auc) ]
        // Sensitivity-N as the report holds it: the mean over sizes of each size's mean over defined correlations.
        let sensitivityResult (r: SensitivityNResult) (xLabel: string) =
            let x = r.Sizes |> Array.map _.X
            let valid = r.MeanCorrelation |> Array.filter (Double.IsNaN >> not)
            result [| value "mean_correlation" (if valid.Length = 0 then nan else Array.average valid) |] xLabel x
                   [| { Name = "correlation"; Values = r.MeanCorrelation; Auc = nan } |]
            |> withStatistic "mean_correlation" classes.Length (meanOfMeans r.Correlations)
            |> withPerInput (correlationsPerPoint "N" x r.Correlations)
        // Audio: 25 ms frames of the waveform (the explained view's frames) set to silence.
        let frameSpace first n = FrameSpace(model, inputs.narrow(0L, int64 first, int64 n), 0.0, device)
        Progress.say $"{step.Name}: {classes.Length} inputs"
        match metric with
        | InsertionDeletion _ when domain.Modality = Modality.Text ->
            let text, tokens, lengths = textOf ()
            let metric, batch = Attribution.Metrics.TokenInsertionDeletion(), plan.Spec.Explain.BatchSize
            use tieBreak = new torch.Generator(uint64 seed, torch.CPU)
            let r =
                InsertionDeletionScores.Concatenate
                    (stored.MapBlocks(alignedBlock [ metric.InputsPerChunk batch ] 1024, fun first n maps ->
                        let t, l, scores = tokenBlock tokens lengths first n maps
                        metric.Evaluate(text, t, l, scores, targets.narrow(0L, int64 first, int64 n), tieBreak, device, batch)))
            oneRound r "fraction of the input's tokens changed to <unk> (most important first)"
        | InsertionDeletion _ when domain.Modality = Modality.Audio ->
            // One frame a step, set to silence: one round (a blur of a waveform is not a neutral substrate).
            let schedule, batch = StepSchedule.FeaturesPerStep 1L, 1024
            use tieBreak = new torch.Generator(uint64 seed, torch.CPU)
            let r =
                InsertionDeletionScores.Concatenate
                    (stored.MapBlocks(alignedBlock [ Attribution.Metrics.InsertionDeletion.InputsPerChunk(schedule, inputs.shape.[1], batch) ] 1024, fun first n maps ->
                        Attribution.Metrics.InsertionDeletion.Play(frameSpace first n, maps, targets.narrow(0L, int64 first, int64 n), schedule, tieBreak, batch)))
            oneRound r "fraction of the clip's 25 ms frames set to silence (most important first)"
        | SensitivityN(masks, points) when domain.Modality = Modality.Text ->
            let text, tokens, lengths = textOf ()
            // N on the log grid up to 80% of the median real length (of all the texts); texts with at most N tokens are skipped at that N.
            let sizes = Attribution.Metrics.TokenSensitivityN.DefaultSizes(lengths, points)
            let sensitivity, batch = Attribution.Metrics.TokenSensitivityN(sizes, masks), plan.Spec.Explain.BatchSize
            // Every block draws the same keys (one generator per call, seeded alike); blocks keep the engine's chunks.
            let r =
                SensitivityNResult.Concatenate
                    (stored.MapBlocks(alignedBlock [ sensitivity.InputsPerChunk batch; int64 batch ] 1024, fun first n maps ->
                        let t, l, scores = tokenBlock tokens lengths first n maps
                        sensitivity.Evaluate(text, t, l, scores, targets.narrow(0L, int64 first, int64 n), seed, device, batch)))
            sensitivityResult r "N (tokens set to <unk>)"
        | SensitivityN(masks, points) when domain.Modality = Modality.Audio ->
            let sizes = Attribution.Metrics.SensitivityN.LogGrid(int inputs.shape.[1], points) |> Array.map (fun n -> SubsetSize.Count n :> SubsetSize)
            let batch = 1024
            // Every block draws the same sets of frames (one generator per call, seeded alike); blocks keep the chunks.
            let r =
                SensitivityNResult.Concatenate
                    (stored.MapBlocks(alignedBlock [ 1024L; Attribution.Metrics.SensitivityN.InputsPerChunk(masks, batch) ] 1024, fun first n maps ->
                        Attribution.Metrics.SensitivityN.Correlate(frameSpace first n, maps, targets.narrow(0L, int64 first, int64 n), sizes, masks, seed, batch)))
            sensitivityResult r "N (25 ms frames set to silence)"
        | InsertionDeletion(pixels, sigma) ->
            let metric = Attribution.Metrics.InsertionDeletion(Nullable pixels)
            let block = alignedBlock [ metric.InputsPerChunk(inputs.shape.[2], inputs.shape.[3]) ] 1024
            // The NeFLAG protocol's two rounds (black, then blurred), each with its own tie-breaking generator through the blocks.
            let round (substrate: Attribution.Metrics.Substrate) =
                use tieBreak = new torch.Generator(uint64 seed, torch.CPU)
                InsertionDeletionScores.Concatenate
                    (stored.MapBlocks(block, fun first n maps ->
                        metric.Evaluate(model, inputs.narrow(0L, int64 first, int64 n), maps, targets.narrow(0L, int64 first, int64 n), substrate, tieBreak, device)))
            let averaged = AveragedInsertionDeletion [| round (Substrate.Black() :> Substrate); round (Substrate.Blurred sigma) |]
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
            let perRound (pick: Attribution.Metrics.InsertionDeletionScores -> float[]) = rounds |> Array.map pick
            let averageOver (rows: float[][]) = Array.init rows.[0].Length (fun i -> rows |> Array.averageBy (fun row -> row.[i]))
            let deletions, insertions = perRound (fun r -> r.Deletion.Auc), perRound (fun r -> r.Insertion.Auc)
            let perInput =
                [ for r, d, i in Array.zip3 rounds deletions insertions do
                    yield $"deletion_{r.Substrate}", d
                    yield $"insertion_{r.Substrate}", i
                    yield $"difference_{r.Substrate}", Array.map2 (-) i d
                  yield "deletion", averageOver deletions
                  yield "insertion", averageOver insertions
                  yield "difference", Array.map2 (-) (averageOver insertions) (averageOver deletions) ]
            result scalars "fraction of pixels changed (most important first)" fractions curves
            |> withIntervals perInput
            |> withPerInput (perInput |> List.map (fun (n, values) -> PerInputs.ofScalar n values))
        | SensitivityN(masks, points) ->
            let features = int (inputs.shape.[2] * inputs.shape.[3])
            let grid = Attribution.Metrics.SensitivityN.LogGrid(features, points)
            let sensitivity = Attribution.Metrics.SensitivityN(grid, masks)
            // Every block draws the same index sets (one generator per call, seeded alike); blocks keep the engine's chunks.
            let block = alignedBlock [ 1024L; sensitivity.InputsPerChunk() ] 1024
            let r =
                SensitivityNResult.Concatenate
                    (stored.MapBlocks(block, fun first n maps ->
                        sensitivity.Evaluate(model, inputs.narrow(0L, int64 first, int64 n), maps, targets.narrow(0L, int64 first, int64 n), seed, device)))
            sensitivityResult r "N (pixels masked)"
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
            // final_spearman is the mean over the inputs whose correlation is defined, so its interval resamples those
            |> withIntervals [ "final_ssim", last.Ssim; "final_spearman", last.Spearman |> Array.filter (Double.IsNaN >> not) ]
            |> withPerInput
                [ for k, s in Array.indexed stages do
                    yield { Name = $"ssim/{s.Stage}"; Values = s.Ssim; Summarises = $"curve ssim at {k}"; Reduction = PerInputs.Mean }
                    yield { Name = $"spearman/{s.Stage}"; Values = s.Spearman; Summarises = $"curve spearman at {k}"; Reduction = PerInputs.MeanOfDefined } ]
        | ExplanationCertainty pairs ->
            // The pairs' positions first, then each block of maps gives the pairs in it: the maps are never whole. One
            // estimate over pooled pairs: its interval is a jackknife over groups of inputs, not a bootstrap (the engine says why).
            let perInput = stored.RowShape |> Array.fold (*) 1L
            let positions = Attribution.Information.ExplanationCertainty.PairPositions(int64 stored.Count * perInput, pairs, seed)
            let blocks =
                stored.MapBlocks(1024, fun first n maps ->
                    Attribution.Information.ExplanationCertainty.PairsIn(inputs.narrow(0L, int64 first, int64 n), maps, int64 first, positions))
            use values = torch.cat([| for struct (v, _) in blocks -> v |], 0L)
            use attributions = torch.cat([| for struct (_, a) in blocks -> a |], 0L)
            for struct (v, a) in blocks do v.Dispose(); a.Dispose()
            let struct (mi, ci) = Attribution.Information.ExplanationCertainty.Estimate(values, attributions, positions, perInput, int64 stored.Count, 3, seed)
            { result [| value "mutual_information_nats" mi |] "" [||] [||] with Intervals = [| Intervals.named "mutual_information_nats" ci |] }
        | EffectiveHeatRatio ->
            let boxes = boxes |> Option.defaultWith (fun () -> failwith "effective_heat_ratio needs a dataset with boxes (fashion_canvas)")
            let r =
                EffectiveHeatRatioResult.Concatenate
                    (stored.MapBlocks(1024, fun first n maps ->
                        Attribution.Metrics.EffectiveHeatRatio().Evaluate(maps, [| for i in first .. first + n - 1 -> boxes.[i] |])))
            let scored = r.Ehr |> Array.filter (Double.IsNaN >> not)
            let meanRatio = Array.init r.Quantiles.Length (fun q -> r.Ratios |> Array.filter (fun row -> row.Length > q && not (Double.IsNaN row.[q])) |> fun rows -> if rows.Length = 0 then nan else rows |> Array.averageBy (fun row -> row.[q]))
            result [| value "ehr" r.Mean; value "inputs_scored" (float scored.Length); value "inputs_excluded" (float r.Excluded) |]
                   "quantile threshold" (Array.ofSeq r.Quantiles) [| { Name = "heat_ratio"; Values = meanRatio; Auc = r.Mean } |]
            |> withIntervals [ "ehr", r.Ehr ]
            |> withPerInput [ { PerInputs.ofScalar "ehr" r.Ehr with Reduction = PerInputs.MeanOfDefined } ]
        | TaylorFidelity count ->
            let n = min count (int inputs.shape.[0])
            // The spec's output function: a ReLU network's logit is piecewise linear, so its second-order terms vanish.
            let options = ExplainOptions(Output = outputOf plan.Spec,
                                         BatchSize = plan.Spec.Explain.BatchSize, Seed = methodSeed plan.Spec kind)
            use report = Attribution.Metrics.TaylorFidelity.Assess(methodOf kind context, model, inputs.narrow(0L, 0L, int64 n).``to``(device: torch.Device),
                                                                   targets.narrow(0L, 0L, int64 n).``to``(device: torch.Device), options)
            let mean (t: Tensor) = t.``to``(torch.ScalarType.Float64).mean().item<float>()
            let relative (e: Tensor) (scale: Tensor) = e.``to``(torch.ScalarType.Float64) / scale.``to``(torch.ScalarType.Float64).clamp_min(1e-12)
            let perInput =
                [ "approximation_error", report.ApproximationError
                  "independent_error_relative", relative report.IndependentError report.IndependentScale
                  "interactive_error_relative", relative report.InteractiveError report.InteractiveScale ]
            let values (t: Tensor) = t.``to``(torch.ScalarType.Float64).cpu().contiguous().data<float>().ToArray()
            result [| for name, t in perInput do yield value name (mean t)
                      yield value "inputs" (float n) |] "" [||] [||]
            |> withIntervals [ for name, t in perInput -> name, values t ]
            |> withPerInput (perInput |> List.map (fun (name, t) -> PerInputs.ofScalar name (values t)))
        | TwoWord pairs ->
            let _, test = domain.Speech |> Option.defaultWith (fun () -> failwith "two_word needs data.dataset speech_commands")
            let right, cat = test.ClassOf "right", test.ClassOf "cat"
            use utterances = Attribution.Metrics.TwoWordAttribution.Pairs(test, right, cat, pairs, seed)
            let n, length = utterances.shape.[0], utterances.shape.[2]
            // The 2 s utterances seen as frames, like every audio input; class covariances re-wrapped for twice the frames.
            let frames = AudioDomain.framesOf length
            let longModel = new Attribution.Models.ReshapedModel(network, [| 1L; length |], frames)
            let longContext =
                { context with
                    Structured = fun _ _ -> failwith "two_word takes covariance_gaussian with structure shared_across_channels only"
                    Model = longModel
                    Covariances =
                        context.Covariances |> Seq.map (fun kv -> kv.Key, Attribution.Sampling.ClassCovariance.FromCovariances(kv.Value.Covariances, frames.[0], 1L, frames.[2], 0.0)) |> dict }
            // The frames view every audio method explains; its elements in order are the utterance's samples.
            let x = utterances.reshape(Array.append [| n |] frames)
            let options = ExplainOptions(Output = outputOf plan.Spec,
                                         BatchSize = plan.Spec.Explain.BatchSize, Seed = methodSeed plan.Spec kind)
            use shares = TwoWordAttribution.Explain(longModel, methodOf kind longContext, x.``to``(device: torch.Device), length / 2L, int64 right, int64 cat, options)
            let rightShare, catShare = shares.FirstOnFirstWord, shares.SecondOnSecondWord
            let bothTop2 = TwoWordAttribution.BothInTopTwo(longModel, x, int64 right, int64 cat, device) |> Array.filter id |> Array.length
            result [| value "right_share_on_first_word" (Array.average rightShare); value "cat_share_on_second_word" (Array.average catShare)
                      value "min_right_share" (Array.min rightShare); value "min_cat_share" (Array.min catShare)
                      value "pairs" (float n); value "pairs_with_both_words_in_top2" (float bothTop2) |] "" [||] [||]
            |> withIntervals [ "right_share_on_first_word", rightShare; "cat_share_on_second_word", catShare ]
        | Roar r ->
            use maps = stored.All()
            let x, oursRight, randomRight = roar plan step r kind domain network model inputs maps labels context device
            let ours, random = Array.map roarPercent oursRight, Array.map roarPercent randomRight
            let mean (v: float[]) = Array.average v.[1..]
            // Per test input: 100 where its prediction is right, averaged over the removed fractions (the scalars are their
            // means). The intervals resample test inputs for these retrained models; the retraining's own noise is not in them.
            let hundred (right: bool[]) = right |> Array.map (fun ok -> if ok then 100.0 else 0.0)
            let overRemoved (points: bool[][]) = Array.init points.[0].Length (fun i -> points.[1..] |> Array.averageBy (fun p -> if p.[i] then 100.0 else 0.0))
            let removed, randomly = overRemoved oursRight, overRemoved randomRight
            let perInput =
                [ "accuracy_nothing_removed", hundred oursRight.[0]; "mean_accuracy_removed", removed; "mean_accuracy_random", randomly
                  "removed_minus_random", Array.map2 (-) removed randomly ]
            result [| value "accuracy_nothing_removed" ours.[0]; value "mean_accuracy_removed" (mean ours); value "mean_accuracy_random" (mean random)
                      value "removed_minus_random" (mean ours - mean random) |]
                   "fraction of the most important pixels removed (retrained each time)" x
                   [| { Name = "accuracy"; Values = ours; Auc = nan }; { Name = "accuracy_random_ranking"; Values = random; Auc = nan } |]
            |> withIntervals perInput
            |> withPerInput (perInput |> List.map (fun (n, values) -> PerInputs.ofScalar n values))
        | RegisteredMetric _ ->
            // A metric defined outside the library: its engine metric, on the explained class's maps.
            let engine = (MetricRegistry.entryOf metric).Build |> Option.map (fun build -> build metric) |> Option.defaultWith (fun () -> failwith $"metric {name} has no engine metric")
            match engine with
            | :? IPerInputMetric as perInput ->
                // Values of each input, a block of maps at a time; each name's scalar is their mean over the inputs where
                // defined, with its bootstrap interval.
                let batch = plan.Spec.Explain.BatchSize
                let blocks =
                    stored.MapBlocks(1024, fun first n maps ->
                        use scope = torch.NewDisposeScope()
                        let x = inputs.narrow(0L, int64 first, int64 n).``to``(device: torch.Device)
                        let m = maps.``to``(device: torch.Device)
                        let t = targets.narrow(0L, int64 first, int64 n).``to``(device: torch.Device)
                        let values = perInput.EvaluateInputs(MetricInputs(model, x, m, t, seed, device, batch), first) |> Seq.toArray
                        for kv in values do
                            if kv.Value.Length <> n then failwith $"metric {name}: EvaluateInputs gave {kv.Value.Length} values of '{kv.Key}' for a block of {n} inputs"
                        values)
                let names = blocks.[0] |> Array.map _.Key
                let valuesOf (n: string) =
                    blocks |> Array.collect (fun b -> b |> Array.tryFind (fun kv -> kv.Key = n) |> Option.map _.Value |> Option.defaultWith (fun () -> failwith $"metric {name}: a block gave no values of '{n}'"))
                let perInputs = [ for n in names -> { PerInputs.ofScalar n (valuesOf n) with Reduction = PerInputs.MeanOfDefined } ]
                // each scalar is its values reduced as exports state it
                result [| for p in perInputs -> value p.Name (PerInputs.reduce p) |] "" [||] [||]
                |> withIntervals [ for p in perInputs -> p.Name, p.Values ]
                |> withPerInput perInputs
            | _ ->
            use maps = stored.All()
            let e = engine.Evaluate(MetricInputs(model, inputs.``to``(device: torch.Device), maps.``to``(device: torch.Device), targets.``to``(device: torch.Device), seed, device, plan.Spec.Explain.BatchSize))
            // An engine metric's per-input values of a scalar's name are, by IMetric's contract, values whose mean it is.
            let scalarNames = e.Scalars |> Seq.map _.Key |> set
            result (e.Scalars |> Seq.map (fun kv -> value kv.Key kv.Value) |> Array.ofSeq) e.XLabel e.X
                   (e.Curves |> Seq.map (fun c -> { Name = c.Name; Values = c.Values; Auc = c.Auc }) |> Array.ofSeq)
            |> withPerInput
                [ for kv in e.PerInput ->
                    if scalarNames.Contains kv.Key then PerInputs.ofScalar kv.Key kv.Value
                    else { Name = kv.Key; Values = kv.Value; Summarises = ""; Reduction = PerInputs.Mean } ]
        | NegativePerturbation _ | RankAgreement -> failwith "not a per-method metric")

let logSobolev (methodId: string) (target: TargetKind) (diagnostics: IDictionary<string, Tensor>) =
    match diagnostics.TryGetValue "entropy", diagnostics.TryGetValue "half_fisher_information" with
    | (true, ent), (true, half) ->
        let e = ent.``to``(torch.ScalarType.Float64).data<float>().ToArray()
        let h = half.``to``(torch.ScalarType.Float64).data<float>().ToArray()
        let ratios = Array.zip e h |> Array.filter (fun (_, hh) -> hh > 0.0) |> Array.map (fun (ee, hh) -> ee / hh) |> Array.sort
        Some { Method = methodId; Target = targetName target; MeanEntropy = Array.average e; MeanHalfFisher = Array.average h
               HoldsFraction = (Array.zip e h |> Array.filter (fun (ee, hh) -> ee <= hh) |> Array.length |> float) / float e.Length
               MedianRatio = if ratios.Length = 0 then nan else ratios.[ratios.Length / 2] }
    | _ -> None

