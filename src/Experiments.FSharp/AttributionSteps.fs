/// Attribution steps: the maps of every explained input for one method and target, computed in calls whose maps are
/// stored as parts until the step is stored (an interrupted step resumes at its first missing call), and loaded from
/// the cache when they are there.
module Experiments.AttributionSteps

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
open Experiments.InputRows

/// Maps, their diagnostics (stored as "diagnostic.NAME") and metadata in one safetensors file, written atomically.
let private saveMaps (file: string) (maps: Tensor) (diagnostics: seq<string * Tensor>) (metadata: (string * string) list) =
    let tensors = Dictionary<string, Tensor>()
    tensors.["maps"] <- maps
    for k, v in diagnostics do tensors.["diagnostic." + k] <- v
    Safetensors.Save(file, tensors, readOnlyDict metadata)

/// What saveMaps wrote, when the file is there and sound: the maps, the diagnostics by name, and the seconds they cost.
let private tryLoadMaps (file: string) =
    Artefacts.tryTensorsWithMetadata file
    |> Option.map (fun (struct (stored, metadata)) ->
        let diagnostics = stored |> Seq.filter (fun kv -> kv.Key.StartsWith "diagnostic.") |> Seq.map (fun kv -> kv.Key.Substring 11, kv.Value) |> Seq.toList
        stored.["maps"], diagnostics, float metadata.["seconds"])

/// The part file of one call: the step's hash, the call's first position and a hash of its rows (the rows depend on
/// the cached model's predictions when only misclassified rows are explained).
let partFile (stepHash: string) (start: int) (block: int[]) =
    let rows = Hashing.hash [ block |> Array.map string |> String.concat "," ] |> Hashing.short
    Artefacts.path "attributions" $"{stepHash}.part-{start}-{rows}" ".safetensors"

/// The calls of a step over `rows`, in calls of `perCall` inputs: each call's position in `rows` and its rows.
/// One process and every shard of a sharded run cut a step into the same calls, so they store the same parts.
let calls (perCall: int) (rows: int[]) =
    [ for start in 0 .. perCall .. rows.Length - 1 -> start, rows.[start .. min (start + perCall) rows.Length - 1] ]

/// The maps and diagnostics of one call, computed and stored as its part (on the CPU), with the seconds they cost.
let private computeCall (name: string) (file: string) (m: IAttributionMethod) model (inputs: InputRows) (targets: int64[])
                        (keys: int64[]) (block: int[]) (options: ExplainOptions) device =
    let callClock = Stopwatch.StartNew()
    let x = inputs.At(block |> Array.map int64).``to``(device: torch.Device)
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
    blockMaps, blockDiagnostics

/// Each call of a step over `rows`, in calls of `perCall`, handed to `consume` (its positions in the explained inputs,
/// its maps and diagnostics, on the CPU, disposed after it returns), with progress and an estimate of the time left;
/// calls stored as parts by an interrupted run (or by the shards of a sharded run) are loaded instead of recomputed.
/// Returns the seconds the loaded parts had cost and the part files (the caller deletes them once the step is stored).
let forEachCall (name: string) (stepHash: string) (perCall: int) (m: IAttributionMethod) model (inputs: InputRows) (targets: int64[])
                (keys: int64[]) (rows: int[]) (options: ExplainOptions) device (consume: int[] -> Tensor -> (string * Tensor) list -> unit) =
    let parts = List<string>()
    let clock = Stopwatch.StartNew()
    let mutable resumedSeconds = 0.0
    let mutable computed = 0
    for start, block in calls perCall rows do
        use scope = torch.NewDisposeScope()
        let file = partFile stepHash start block
        let blockMaps, blockDiagnostics =
            match tryLoadMaps file with
            | Some(maps, diagnostics, seconds) ->
                resumedSeconds <- resumedSeconds + seconds
                maps, diagnostics
            | None ->
                let computedCall = computeCall name file m model inputs targets keys block options device
                computed <- computed + block.Length
                computedCall
        parts.Add file
        consume block blockMaps blockDiagnostics
        let finished = start + block.Length
        let left =
            if computed = 0 || finished >= rows.Length then ""
            else sprintf ", about %s left" (Progress.duration (clock.Elapsed.TotalSeconds / float computed * float (rows.Length - finished)))
        Progress.report name (int64 finished) (int64 rows.Length) ("inputs" + left)
    resumedSeconds, List.ofSeq parts

/// Maps of `rows` of `inputs` stored in `file` under "maps", in the order of `rows` (forEachCall): each call's maps go
/// to their rows of the file as they come, so they are never whole in memory (ROAR's training maps, which the
/// retraining masks a block at a time). The file is sealed and renamed into place when complete, and then the calls'
/// parts are deleted; diagnostics are not kept. Returns the stored maps.
let explainToFile (file: string) (name: string) (stepHash: string) (perCall: int) (m: IAttributionMethod) model (inputs: InputRows)
                  (targets: int64[]) (keys: int64[]) (rows: int[]) (options: ExplainOptions) (metadata: (string * string) list) device =
    let mutable writer : Attribution.Models.SafetensorsRowWriter option = None
    try
        let mutable written = 0
        let _, parts =
            forEachCall name stepHash perCall m model inputs targets keys rows options device (fun _ blockMaps _ ->
                let w =
                    writer |> Option.defaultWith (fun () ->
                        let shape = Array.append [| int64 rows.Length |] blockMaps.shape.[1..]
                        let w = new Attribution.Models.SafetensorsRowWriter(file, [ struct ("maps", blockMaps.dtype, shape) ])
                        writer <- Some w
                        w)
                w.Write("maps", int64 written, blockMaps)
                written <- written + int blockMaps.shape.[0])
        let w = writer |> Option.defaultWith (fun () -> failwith $"{name}: no inputs to explain")
        w.Commit(readOnlyDict metadata)
        for part in parts do File.Delete part
        StoredMaps file
    finally
        writer |> Option.iter (fun w -> w.Dispose())

/// Which of `count` shards computes call `call` of a step: every count-th call from the shard's index, so that shards
/// of a step whose inputs grow in cost along the set share the cost evenly.
let shardOf (count: int) (call: int) = call % count

/// Whether call `call` of a step belongs to shard `index` of `count` (shardOf).
let inShare (index: int) (count: int) (call: int) = shardOf count call = index

/// The inputs each of `count` shards explains in a step's calls over `rows` (shardOf): the load a shard's deal of
/// metric blocks starts from (MetricBlocks.deal), so that the shard given the first call is not also given the
/// largest block.
let callLoads (perCall: int) (rows: int[]) (count: int) =
    let loads = Array.zeroCreate<int64> count
    for k, (_, block) in List.indexed (calls perCall rows) do
        let shard = shardOf count k
        loads.[shard] <- loads.[shard] + int64 block.Length
    loads

/// A shard's share of a step: the calls it owns, computed and stored as parts unless a part is already there (a
/// re-run of a killed shard loses at most the call it was in). Returns (calls computed, calls already stored).
let explainShare (name: string) (stepHash: string) (perCall: int) (m: IAttributionMethod) model (inputs: InputRows) (targets: int64[])
                 (keys: int64[]) (rows: int[]) (options: ExplainOptions) device (index: int) (count: int) =
    let owned = calls perCall rows |> List.indexed |> List.filter (fun (k, _) -> inShare index count k) |> List.map snd
    let clock = Stopwatch.StartNew()
    let mutable computed, stored, done' = 0, 0, 0
    let total = owned |> List.sumBy (fun (_, block) -> block.Length)
    for start, block in owned do
        let file = partFile stepHash start block
        if Artefacts.soundTensors file then stored <- stored + 1
        else
            use scope = torch.NewDisposeScope()
            computeCall name file m model inputs targets keys block options device |> ignore
            computed <- computed + 1
        done' <- done' + block.Length
        Progress.report name (int64 done') (int64 total) $"inputs of this shard ({clock.Elapsed.TotalSeconds:F0}s)"
    computed, stored

/// The rows of the explained inputs a step computes: all of them, except for the predicted class when the
/// ground-truth maps are there to copy from (`copiesGroundTruth`): then only those whose prediction is not the label.
let rowsToExplain (target: TargetKind) (copiesGroundTruth: bool) (labels: int64[]) (predictions: int64[]) =
    let all = Array.init labels.Length id
    match target with
    | Predicted when copiesGroundTruth -> all |> Array.filter (fun r -> predictions.[r] <> labels.[r])
    | _ -> all

/// Whether a plan's attribution step for the predicted class copies the ground-truth maps: when the plan computes
/// the same method's ground-truth maps before it (Execute runs the steps in order).
let copiesGroundTruth (plan: Plan) (step: Step) =
    match step.Kind with
    | Attribute(kind, Predicted) ->
        plan.Steps |> List.takeWhile (fun s -> s.Name <> step.Name) |> List.exists (fun s -> s.Kind = Attribute(kind, GroundTruth))
    | _ -> false

/// The engine's options of a plan's method: the spec's output and batch size, the method's noise seed.
let optionsOf (plan: Plan) (kind: MethodKind) =
    ExplainOptions(Output = outputOf plan.Spec, BatchSize = plan.Spec.Explain.BatchSize, Seed = methodSeed plan.Spec kind)

/// The file of an attribution step's maps, stored whole.
let stepFile (step: Step) = Artefacts.path "attributions" step.Hash ".safetensors"

/// A shard's share of an attribution step (AttributionSteps.explainShare); nothing when the step is stored whole.
let attributeShare (plan: Plan) (step: Step) (kind: MethodKind) (target: TargetKind) model (inputs: InputRows) (labels: int64[]) (predictions: int64[])
                   (keys: int64[]) (context: MethodContext) device (index: int) (count: int) =
    if Artefacts.soundTensors (stepFile step) then 0, 0
    else
        let m = methodOf kind context
        let targets = match target with GroundTruth -> labels | Predicted -> predictions
        let rows = rowsToExplain target (copiesGroundTruth plan step) labels predictions
        let options = optionsOf plan kind
        explainShare step.Name step.Hash (inputsPerCall kind) m model inputs targets keys rows options device index count

/// The inputs each of `count` shards explains in an attribution step (callLoads); none when the step is stored whole.
let attributeLoads (plan: Plan) (step: Step) (kind: MethodKind) (target: TargetKind) (labels: int64[]) (predictions: int64[]) (count: int) =
    if Artefacts.soundTensors (stepFile step) then Array.zeroCreate<int64> count
    else callLoads (inputsPerCall kind) (rowsToExplain target (copiesGroundTruth plan step) labels predictions) count

/// A stored step: its maps (read in blocks), its diagnostics and the seconds it cost; None when the file is absent or
/// not sound (a corrupt one is quarantined by the check).
let private tryStored (file: string) =
    if not (Artefacts.soundTensors file) then None
    else
        use reader = new Attribution.Models.SafetensorsRows(file)
        let diagnostics =
            reader.Names |> Seq.filter (fun n -> n.StartsWith "diagnostic.") |> Seq.map (fun n -> n.Substring 11, reader.ReadAll n) |> dict
        Some(StoredMaps file, diagnostics, float reader.Metadata.["seconds"])

/// Rows of `t` written at `positions` (ascending) of a stored tensor, one write per run of consecutive positions.
let private writeAt (writer: Attribution.Models.SafetensorsRowWriter) (name: string) (positions: int[]) (t: Tensor) =
    let mutable k = 0
    while k < positions.Length do
        let mutable run = 1
        while k + run < positions.Length && positions.[k + run] = positions.[k] + run do run <- run + 1
        writer.Write(name, int64 positions.[k], t.narrow(0L, int64 k, int64 run))
        k <- k + run

/// Loads a cached attribution artefact, or computes and stores it: its calls are computed (or found) as parts, then the
/// step's file is assembled from the parts a call at a time, so no step's maps are ever whole in memory and the file
/// being written exists only for the assembly (a run killed during the calls leaves parts to resume from, not a
/// half-written file). For the predicted class, rows whose prediction equals the label are copied, a block at a time,
/// from the ground-truth maps when those exist: the method's noise depends on (method, input) only, so those maps are
/// identical.
let attribute (plan: Plan) (step: Step) (kind: MethodKind) (target: TargetKind) model (inputs: InputRows) (labels: int64[]) (predictions: int64[])
                      (keys: int64[]) (context: MethodContext) (groundTruth: (StoredMaps * IDictionary<string, Tensor>) option) device =
    let file = stepFile step
    match tryStored file with
    | Some(maps, diagnostics, seconds) -> maps, diagnostics, seconds, true
    | None ->
        let clock = Stopwatch.StartNew()
        let m = methodOf kind context
        let options = optionsOf plan kind
        let targets = match target with GroundTruth -> labels | Predicted -> predictions
        let total = labels.Length
        let copied = match target, groundTruth with Predicted, Some gt -> Some gt | _ -> None
        let rows = rowsToExplain target copied.IsSome labels predictions
        let whole (t: Tensor) = Array.append [| int64 total |] t.shape.[1..]
        // Diagnostics (a value or a few per input) are gathered in memory.
        let diagnostics = Dictionary<string, Tensor>()
        copied |> Option.iter (fun (_, gtDiagnostics) -> for KeyValue(k, v) in gtDiagnostics do diagnostics.[k] <- v.clone())
        let resumed, parts =
            forEachCall step.Name step.Hash (inputsPerCall kind) m model inputs targets keys rows options device (fun block _ blockDiagnostics ->
                use index = torch.tensor(block |> Array.map int64)
                for k, v in blockDiagnostics do
                    if not (diagnostics.ContainsKey k) then diagnostics.[k] <- torch.zeros(whole v, dtype = v.dtype).DetachFromDisposeScope()
                    diagnostics.[k].index_copy_(0L, index, v) |> ignore)
        // The file's tensors are declared by the first block that shows the maps' shape. Each part is read again here (a
        // stored one was read above for its diagnostics): the price of a step file that exists only while it is assembled.
        let mutable writer : Attribution.Models.SafetensorsRowWriter option = None
        let writerFor (blockMaps: Tensor) =
            match writer with
            | Some w -> w
            | None ->
                let declared =
                    struct ("maps", blockMaps.dtype, whole blockMaps)
                    :: [ for KeyValue(k, v) in diagnostics -> struct ("diagnostic." + k, v.dtype, v.shape) ]
                let w = new Attribution.Models.SafetensorsRowWriter(file, declared)
                writer <- Some w
                w
        let assembled =
            try
                match copied with
                | Some(gtMaps, _) -> gtMaps.MapBlocks(1024, fun first _ block -> (writerFor block).Write("maps", int64 first, block)) |> ignore
                | None -> ()
                let complete =
                    List.zip (calls (inputsPerCall kind) rows) parts
                    |> List.forall (fun ((_, block), part) ->
                        use scope = torch.NewDisposeScope()
                        match tryLoadMaps part with
                        | Some(blockMaps, _, _) -> writeAt (writerFor blockMaps) "maps" block blockMaps; true
                        | None -> false)
                if complete then
                    let w = writer |> Option.defaultWith (fun () -> failwith $"{step.Name}: no inputs to explain")
                    for KeyValue(k, v) in diagnostics do w.Write("diagnostic." + k, 0L, v)
                    let seconds = clock.Elapsed.TotalSeconds + resumed
                    // noise_seed: the method seed as a plain integer, from which each input's generator seed follows (docs/methods.md,
                    // "Randomness and batching"), so that a verifier outside .NET can draw the same noise.
                    w.Commit(readOnlyDict [ "method", m.Describe(); "target", targetName target; "seconds", string seconds; "noise_seed", string options.Seed ])
                    for part in parts do File.Delete part
                    Some(StoredMaps file, (diagnostics :> IDictionary<string, Tensor>), seconds, false)
                else
                    // Whatever parts this process still wrote are the stored step's rows: not needed once it is stored.
                    for part in parts do (try File.Delete part with :? IOException -> ())
                    None
            finally
                writer |> Option.iter (fun w -> w.Dispose())
        match assembled with
        | Some result -> result
        | None ->
            // A part went between its call and the assembly: another process running the same spec on this cache stored
            // the step and removed its parts. Its file holds the same maps.
            match tryStored file with
            | Some(maps, stored, seconds) -> maps, stored, seconds, true
            | None -> failwith $"{step.Name}: a stored call of this step disappeared from the cache {Artefacts.root ()} before the step was assembled, and no other process stored the step; run again"
