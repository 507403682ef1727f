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

/// The file of a ROAR step's training maps, stored whole.
let private trainMapsFile (step: Step) = Artefacts.path "attributions" (roarTrainMapsKey step) ".safetensors"

/// A shard's share of the training subset's maps, the part of ROAR that is attribution: its calls stored as parts,
/// which the assembling run loads instead of computing (AttributionSteps.explainShare). Nothing when the maps are
/// stored whole. Returns (calls computed, calls already stored).
let trainMapsShare (plan: Plan) (step: Step) (r: RoarSpec) (kind: MethodKind) (domain: Domain.Domain) (network: torch.nn.Module<Tensor, Tensor>)
                   (model: torch.nn.Module<Tensor, Tensor>) (context: Building.MethodContext) (device: torch.Device) (index: int) (count: int) =
    if Artefacts.soundTensors (trainMapsFile step) then 0, 0
    else
        let rows, trainInputs, trainLabels = trainingSubset plan.Spec r domain network
        explainShare $"{step.Name} (training inputs)" (roarTrainMapsKey step) (inputsPerCall kind) (methodOf kind context) model (InputRows.ofTensor trainInputs)
                     (trainLabels.data<int64>().ToArray()) rows [| 0 .. rows.Length - 1 |] (optionsOf plan kind) device index count

/// The training inputs each of `count` shards explains (AttributionSteps.callLoads); none when the maps are stored whole.
let trainMapsLoads (step: Step) (r: RoarSpec) (kind: MethodKind) (domain: Domain.Domain) (count: int) =
    if Artefacts.soundTensors (trainMapsFile step) then Array.zeroCreate<int64> count
    else callLoads (inputsPerCall kind) (Array.init (min r.TrainInputs domain.TrainCount) id) count

/// One point of a ROAR step: its name in progress lines, the ranking it removes by ([]: nothing removed, [step hash]:
/// the method's, ["random"]: a random ranking) and the fraction removed.
type private Point = { Name: string; Ranking: string list; Fraction: float }

let private nothingRemoved = { Name = "nothing removed"; Ranking = []; Fraction = 0.0 }
let private byMethod (step: Step) (fraction: float) = { Name = "method"; Ranking = [ step.Hash ]; Fraction = fraction }
let private byRandom (fraction: float) = { Name = "random ranking"; Ranking = [ "random" ]; Fraction = fraction }

/// Every point of a ROAR step, each with its cache key (nothing removed and the random ranking's points are shared by
/// the ROAR steps of every method with the same ROAR parameters: their keys do not name the step).
let private pointsOf (plan: Plan) (step: Step) (r: RoarSpec) =
    [ yield nothingRemoved
      for f in r.Fractions do
          yield byMethod step f
          yield byRandom f ]
    |> List.map (fun p -> roarPointKey plan r p.Fraction p.Ranking, p)

/// The cache file of a point.
let private pointFile (key: string) = Artefacts.path "metrics" key ".json"

/// The block of inputs in which ROAR masks its sets and predicts the test set: the maps of a block are in memory at once.
let private blockSize = 1024L

/// A set ROAR masks a block at a time: `inputs`, read a block at a time, ranked by `scores` read from the cache a block
/// at a time, or by the random ranking (None).
let private setOf (inputs: InputRows.InputRows) (scores: StoredMaps option) =
    let read (stored: StoredMaps) = System.Func<int64, int64, Tensor>(fun first n -> stored.Rows(int first, int n))
    Attribution.Metrics.RoarSet(int64 inputs.Count, (fun first n -> inputs.Block(int first, int n)), (scores |> Option.map read |> Option.toObj), blockSize)

/// Which test inputs the model retrained on the masked training subset predicts right at a point, read from the cache
/// or computed and stored; what every point of the step shares (the training subset, the fill, the retraining) is set
/// up once, by this function's first application. The maps stay in the cache: each point reads them a block at a time.
let private pointReader (run: MetricRun) (r: RoarSpec) (trainMaps: StoredMaps) (trainInputs: Tensor) (trainLabels: Tensor) =
    let spec, domain = run.Plan.Spec, run.Domain
    let seed = Seeds.Derive(int64 spec.Seed, "roar")
    let fill = Attribution.Metrics.Roar.ChannelMean trainInputs
    // A fresh model from the same initialisation every time, trained on the masked training subset; ROAR disposes it.
    let retrain =
        Attribution.Metrics.RoarRetraining(fun maskedTrain ->
            torch.manual_seed (Seeds.Derive(seed, "init")) |> ignore
            let retrained = domain.Explained(domain.NewModel())
            let options = TrainingOptions(r.Epochs, spec.Model.BatchSize, spec.Model.LearningRate, Seeds.Derive(seed, "training"))
            Training.Train(retrained, maskedTrain, trainLabels, (fun x -> retrained.forward x), options, run.Device) |> ignore
            retrained)
    fun (key: string, point: Point) ->
        fst <| Artefacts.jsonOrCompute (pointFile key) (fun () ->
            // the method's maps rank the pixels, or (None) the random ranking does
            let scores (maps: StoredMaps) = if point.Ranking = [ "random" ] then None else Some maps
            let train, test = setOf (InputRows.ofTensor trainInputs) (scores trainMaps), setOf run.Inputs (scores run.Stored)
            let right = Attribution.Metrics.Roar.Correct(train, test, run.Labels, fill, point.Fraction, seed, retrain, run.Device)
            Progress.say $"{run.Step.Name}: {point.Name} at {point.Fraction}: {percent right:F2}%%"
            right)

/// The training subset's maps: in the cache, or explained (loading the parts shards stored) and stored, a call at a
/// time.
let private trainMapsOf (run: MetricRun) (rows: int64[]) (trainInputs: Tensor) (trainLabels: Tensor) =
    let step = run.Step
    let file = trainMapsFile step
    if Artefacts.soundTensors file then StoredMaps file
    else
        explainToFile file $"{step.Name} (training inputs)" (roarTrainMapsKey step) (inputsPerCall run.Kind) run.Explainer run.Explaining
                      (InputRows.ofTensor trainInputs) (trainLabels.data<int64>().ToArray()) rows [| 0 .. rows.Length - 1 |] run.ExplainOptions [ "step", step.Name ] run.Device

/// The training subset's maps stored whole (the maps job of a cluster run): found in the cache, or assembled from the
/// shards' parts (computing any call that has none) and stored.
let storeTrainMaps (run: MetricRun) (r: RoarSpec) =
    let rows, trainInputs, trainLabels = trainingSubset run.Plan.Spec r run.Domain run.Network
    trainMapsOf run rows trainInputs trainLabels |> ignore

/// The fractions (0 first) and, at each, which test inputs the retrained model predicts right, for the method's ranking
/// and for a random one.
let private points (run: MetricRun) (r: RoarSpec) =
    let rows, trainInputs, trainLabels = trainingSubset run.Plan.Spec r run.Domain run.Network
    let read = pointReader run r (trainMapsOf run rows trainInputs trainLabels) trainInputs trainLabels
    let at (point: Point) = read (roarPointKey run.Plan r point.Fraction point.Ranking, point)
    let fractions = 0.0 :: r.Fractions
    let ours = fractions |> List.map (fun f -> if f = 0.0 then at nothingRemoved else at (byMethod run.Step f))
    let random = fractions |> List.map (fun f -> if f = 0.0 then List.head ours else at (byRandom f))
    Array.ofList fractions, Array.ofList ours, Array.ofList random

/// The points of ROAR steps that a shard owns, among those not yet stored: the points of every ROAR step of a plan, in
/// plan order and each key once, are dealt to the shards in turn (point k to shard k mod count).
let ownedPoints (plan: Plan) (index: int) (count: int) : Set<string> =
    [ for step in plan.Steps do
        match step.Kind with
        | EvaluateMethodMetric(Experiments.Roar r) -> yield! pointsOf plan step r |> List.map fst
        | _ -> () ]
    |> List.distinct
    |> List.indexed
    |> List.filter (fun (k, _) -> k % count = index)
    |> List.map snd
    |> Set.ofList

/// A shard's share of a ROAR step's points (those in `owned` and not stored), when the step's maps of the test inputs
/// and of its training subset are both stored whole (a run after the maps exist, such as a re-run with ROAR added or
/// changed); otherwise nothing, and the assembling run computes the points. Returns (points computed, points stored).
let pointsShare (run: MetricRun) (r: RoarSpec) (owned: Set<string>) =
    if not (Artefacts.soundTensors (trainMapsFile run.Step)) then 0, 0
    else
        let mine = pointsOf run.Plan run.Step r |> List.filter (fun (key, _) -> owned.Contains key)
        let stored = mine |> List.filter (fun (key, _) -> File.Exists(pointFile key)) |> List.length
        if stored = mine.Length then 0, stored
        else
            let rows, trainInputs, trainLabels = trainingSubset run.Plan.Spec r run.Domain run.Network
            let read = pointReader run r (trainMapsOf run rows trainInputs trainLabels) trainInputs trainLabels
            for key, point in mine do
                if not (File.Exists(pointFile key)) then read (key, point) |> ignore
            mine.Length - stored, stored

/// The accuracy curves, and as scalars their means over the removed fractions. The intervals resample test inputs for
/// these retrained models; the retraining's own noise is not in them.
let evaluate (run: MetricRun) (r: RoarSpec) =
    let x, oursRight, randomRight = points run r
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
