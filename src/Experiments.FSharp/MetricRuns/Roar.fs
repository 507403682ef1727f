/// ROAR (the algorithm is the engine's Roar): the training subset and its maps, the retraining, and each point read from
/// the cache or computed and stored on its own, so that an interrupted ROAR resumes.
module Experiments.MetricRuns.Roar

open System.IO
open TorchSharp
open Attribution
open Attribution.Data
open Attribution.Methods
open Attribution.Models
open Attribution.Runtime
open Experiments
open Experiments.Plan
open Experiments.Results
open Experiments.Running
open Experiments.AttributionSteps
open Experiments.MetricRuns.MetricRun

/// Percent of true values: a point's accuracy, as the engine's Roar.Accuracy computes it.
let private percent (right: bool[]) = 100.0 * float (right |> Array.filter id).Length / float right.Length

/// The seeded subset of the training set that ROAR explains and retrains on: its rows, inputs and labels.
let private trainingSubset (spec: Spec) (r: RoarSpec) (domain: Domain.Domain) (network: torch.nn.Module<Tensor, Tensor>) =
    let rows =
        use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "roar/train-subset")), torch.CPU)
        use order = torch.randperm(int64 domain.TrainCount, generator = g)
        order.narrow(0L, 0L, int64 (min r.TrainInputs domain.TrainCount)).data<int64>().ToArray()
    rows, domain.Inputs network true rows, domain.TrainLabels.index_select(0L, torch.tensor(rows))

/// A shard's share of the training subset's maps, the part of ROAR that is attribution: its calls stored as parts,
/// which the assembling run loads instead of computing (AttributionSteps.explainShare). Nothing when the maps are
/// stored whole. Returns (calls computed, calls already stored).
let trainMapsShare (plan: Plan) (step: Step) (r: RoarSpec) (kind: MethodKind) (domain: Domain.Domain) (network: torch.nn.Module<Tensor, Tensor>)
                   (model: torch.nn.Module<Tensor, Tensor>) (context: Building.MethodContext) (device: torch.Device) (index: int) (count: int) =
    if Artefacts.soundTensors (Artefacts.path "attributions" (roarTrainMapsKey step) ".safetensors") then 0, 0
    else
        let rows, trainInputs, trainLabels = trainingSubset plan.Spec r domain network
        let options = ExplainOptions(Output = outputOf plan.Spec, BatchSize = plan.Spec.Explain.BatchSize, Seed = methodSeed plan.Spec kind)
        explainShare $"{step.Name} (training inputs)" (roarTrainMapsKey step) (inputsPerCall kind) (methodOf kind context) model trainInputs
                     (trainLabels.data<int64>().ToArray()) rows [| 0 .. rows.Length - 1 |] options device index count

/// The fractions (0 first) and, at each, which test inputs the model retrained on the masked training subset predicts
/// right, for the method's ranking and for a random one.
let private points (run: MetricRun) (r: RoarSpec) (testMaps: Tensor) =
    let spec, step, domain = run.Plan.Spec, run.Step, run.Domain
    let seed = Seeds.Derive(int64 spec.Seed, "roar")
    let rows, trainInputs, trainLabels = trainingSubset spec r domain run.Network
    let fill = Attribution.Metrics.Roar.ChannelMean trainInputs
    // Maps of the training subset, explaining each input's label; cached with the step.
    let trainMapsFile = Artefacts.path "attributions" (roarTrainMapsKey step) ".safetensors"
    let trainMaps =
        match Artefacts.tryTensors trainMapsFile with
        | Some stored -> stored.["maps"]
        | None ->
            let maps, _, _, parts =
                explainRows $"{step.Name} (training inputs)" (roarTrainMapsKey step) (inputsPerCall run.Kind) run.Explainer run.Model trainInputs
                            (trainLabels.data<int64>().ToArray()) rows [| 0 .. rows.Length - 1 |] run.ExplainOptions run.Device
            Safetensors.Save(trainMapsFile, readOnlyDict [ "maps", maps ], readOnlyDict [ "step", step.Name ])
            for part in parts do File.Delete part
            maps
    // A fresh model from the same initialisation every time, trained on the masked training subset.
    let retrain =
        Attribution.Metrics.RoarRetraining(fun maskedTrain maskedTest ->
            torch.manual_seed (Seeds.Derive(seed, "init")) |> ignore
            use fresh = domain.NewModel()
            let retrained = domain.Explained fresh
            let options = TrainingOptions(r.Epochs, spec.Model.BatchSize, spec.Model.LearningRate, Seeds.Derive(seed, "training"))
            Training.Train(retrained, maskedTrain, trainLabels, (fun x -> retrained.forward x), options, run.Device) |> ignore
            Training.Logits(retrained, maskedTest, run.Device))
    let correct (name: string) (ranking: string list) (trainScores: Tensor) (testScores: Tensor) (fraction: float) : bool[] =
        let file = Artefacts.path "metrics" (roarPointKey run.Plan r fraction ranking) ".json"
        fst <| Artefacts.jsonOrCompute file (fun () ->
            let right = Attribution.Metrics.Roar.Correct(trainInputs, trainScores, run.Inputs, testScores, run.Labels, fill, fraction, seed, retrain)
            Progress.say $"{step.Name}: {name} at {fraction}: {percent right:F2}%%"
            right)
    let fractions = 0.0 :: r.Fractions
    let ours = fractions |> List.map (fun f -> if f = 0.0 then correct "nothing removed" [] trainMaps testMaps 0.0 else correct "method" [ step.Hash ] trainMaps testMaps f)
    let struct (randomTrain, randomTest) = Attribution.Metrics.Roar.RandomScores(trainMaps.shape, testMaps.shape, Seeds.Derive(seed, "random-ranking"))
    let random = fractions |> List.map (fun f -> if f = 0.0 then List.head ours else correct "random ranking" [ "random" ] randomTrain randomTest f)
    Array.ofList fractions, Array.ofList ours, Array.ofList random

/// The accuracy curves, and as scalars their means over the removed fractions. The intervals resample test inputs for
/// these retrained models; the retraining's own noise is not in them.
let evaluate (run: MetricRun) (r: RoarSpec) =
    use maps = run.Stored.All()
    let x, oursRight, randomRight = points run r maps
    let ours, random = Array.map percent oursRight, Array.map percent randomRight
    let mean (v: float[]) = Array.average v.[1..]
    // Per test input: 100 where its prediction is right, averaged over the removed fractions (the scalars are their means).
    let hundred (right: bool[]) = right |> Array.map (fun ok -> if ok then 100.0 else 0.0)
    let overRemoved (points: bool[][]) = Array.init points.[0].Length (fun i -> points.[1..] |> Array.averageBy (fun p -> if p.[i] then 100.0 else 0.0))
    let removed, randomly = overRemoved oursRight, overRemoved randomRight
    let perInput =
        [ "accuracy_nothing_removed", hundred oursRight.[0]; "mean_accuracy_removed", removed; "mean_accuracy_random", randomly
          "removed_minus_random", Array.map2 (-) removed randomly ]
    result run [| value "accuracy_nothing_removed" ours.[0]; value "mean_accuracy_removed" (mean ours); value "mean_accuracy_random" (mean random)
                  value "removed_minus_random" (mean ours - mean random) |]
           "fraction of the most important pixels removed (retrained each time)" x
           [| { Name = "accuracy"; Values = ours; Auc = nan }; { Name = "accuracy_random_ranking"; Values = random; Auc = nan } |]
    |> withIntervals run perInput
    |> withPerInput (perInput |> List.map (fun (n, values) -> PerInputs.ofScalar n values))
