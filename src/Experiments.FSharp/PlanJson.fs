/// The plan for programs (`plan --json`): each step's name, kind, content hash, dependencies, size and cache state,
/// so that a scheduler can see what a run will compute and what is already stored.
module Experiments.PlanJson

open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open Experiments.Plan

/// The cache folder a step's artefact lives in.
let folderOf (step: Step) =
    match step.Kind with
    | ProvideModel -> "models"
    | EstimateCovariance _ | EstimateStructuredCovariance _ -> "covariances"
    | Attribute _ -> "attributions"
    | _ -> "metrics"

/// Whether the cache holds a step: "cached", "partial" (an attribution step's calls or a metric's blocks stored as
/// parts, by an interrupted run or by shards) or "to do"; and how many parts are stored.
let private cacheState (folder: string) (key: string) =
    let dir = Path.Combine(Artefacts.root (), folder)
    let files = if Directory.Exists dir then Directory.GetFiles(dir, key + ".*") |> Array.map (fun f -> match Path.GetFileName f with null -> "" | n -> n) else [||]
    let parts = files |> Array.filter (fun f -> f.Contains ".part-" || f.Contains ".block-") |> Array.length
    if files.Length > parts then "cached", parts
    elif parts > 0 then "partial", parts
    else "to do", 0

let cacheStateOf (step: Step) = cacheState (folderOf step) step.Hash

let private kindName (kind: StepKind) =
    match kind with
    | ProvideModel -> "model"
    | EstimateCovariance _ | EstimateStructuredCovariance _ -> "covariance"
    | Attribute _ -> "attribution"
    | EvaluateNegativePerturbation _ -> "negative_perturbation"
    | EvaluateRankAgreement -> "rank_agreement"
    | EvaluateMethodMetric m -> Catalogue.metricName m

/// The plan as JSON text. Sizes are the spec's: `inputs_requested` is data.explain, which the run caps at the test
/// set's size (null: every test input).
let render (plan: Plan) =
    let inputs = plan.Spec.Data.Explain
    let every = inputs = System.Int32.MaxValue
    let strings (xs: string list) = JsonArray(xs |> List.map (fun x -> JsonValue.Create x :> JsonNode | null) |> Array.ofList)
    let step (s: Step) =
        let state, parts = cacheStateOf s
        let o = JsonObject()
        o.["name"] <- JsonValue.Create s.Name
        o.["kind"] <- JsonValue.Create(kindName s.Kind)
        o.["hash"] <- JsonValue.Create s.Hash
        o.["depends_on"] <- strings s.DependsOn
        o.["methods"] <- strings s.Methods
        o.["cache"] <- JsonValue.Create state
        o.["parts_stored"] <- JsonValue.Create parts
        match s.Kind with
        | Attribute(kind, _) ->
            let perCall = Running.inputsPerCall kind
            o.["inputs_requested"] <- (if every then null else JsonValue.Create inputs)
            o.["inputs_per_call"] <- JsonValue.Create perCall
            // at most: the predicted class's step computes only the misclassified inputs when it copies the ground truth's maps
            o.["calls_at_most"] <- (if every then null else JsonValue.Create((int64 inputs + int64 perCall - 1L) / int64 perCall))
        | EvaluateMethodMetric(Experiments.Roar r) ->
            // ROAR's training maps: attribution inside the metric, which shards share out as parts
            let kind = methodKind plan.Spec (List.head s.Methods)
            let perCall = Running.inputsPerCall kind
            let state, parts = cacheState "attributions" (roarTrainMapsKey s)
            let maps = JsonObject()
            maps.["cache"] <- JsonValue.Create state
            maps.["parts_stored"] <- JsonValue.Create parts
            maps.["inputs_requested"] <- JsonValue.Create r.TrainInputs
            maps.["inputs_per_call"] <- JsonValue.Create perCall
            maps.["calls"] <- JsonValue.Create((r.TrainInputs + perCall - 1) / perCall)
            o.["training_maps"] <- maps
        | _ -> ()
        o :> JsonNode | null
    let root = JsonObject()
    root.["spec"] <- JsonValue.Create plan.Spec.Name
    root.["seed"] <- JsonValue.Create plan.Spec.Seed
    root.["data_hash"] <- JsonValue.Create plan.DataHash
    root.["model_hash"] <- JsonValue.Create plan.ModelHash
    root.["cache"] <- JsonValue.Create(Path.GetFullPath(Artefacts.root ()))
    root.["steps"] <- JsonArray(plan.Steps |> List.map step |> Array.ofList)
    root.ToJsonString(JsonSerializerOptions(WriteIndented = true))
