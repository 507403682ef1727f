/// A metric's passes over the inputs, a block of inputs at a time, with each block's result stored as a part in the
/// cache: the shards of a cluster run share the blocks out, and a run killed in a long metric resumes at its first
/// missing block. A block's result does not depend on which process computed it: its inputs keep the engine's chunks
/// (MetricRun.alignedBlock), and a pass that breaks ties from one generator starts each block where that generator,
/// running through every block before it, would be (FeatureRanking.SkipRows).
module Experiments.MetricRuns.MetricBlocks

open System.IO
open TorchSharp
open Attribution.Metrics
open Experiments
open Experiments.MetricRuns.MetricRun

type Tensor = torch.Tensor

/// One pass of a metric over every explained input, a block at a time.
type Pass<'T> =
    { /// Tells the pass's parts from the other passes of the step (e.g. a substrate's name).
      Name: string
      /// Inputs per block (an alignedBlock of the engine's chunks).
      Size: int
      /// The first inputs the pass covers (a metric on the first inputs only); None: every explained input.
      Inputs: int option
      /// Tie-breaking draws per input from the pass's one generator (seeded with the metric's seed); 0 when the pass
      /// breaks no ties.
      TieBreakSlots: int64
      /// Whether a block reads the stored maps. A pass that does not (it explains its inputs again) is handed an empty
      /// tensor in their place, and shards share its blocks out before the maps are stored whole.
      ReadsMaps: bool
      /// The result of the block of `n` inputs from `first`, from their maps and the generator where this block starts.
      Compute: int -> int -> Tensor -> torch.Generator -> 'T
      Write: string -> 'T -> unit
      Read: string -> 'T option }

/// Reads and writes a block's result as a sealed JSON artefact of the record `ofResult` makes.
let json (ofResult: 'T -> 'P) (toResult: 'P -> 'T) =
    (fun (file: string) (result: 'T) -> Artefacts.writeJson file (ofResult result)),
    (fun (file: string) -> Artefacts.tryJson<'P> file |> Option.map toResult)

/// What a pass runs over: the metric step (its hash names the parts), the seed of the pass's tie-breaking generator,
/// the number of explained inputs and their stored maps (None before they are stored whole).
type Source = { StepHash: string; StepName: string; Seed: int64; Count: int; Stored: StoredMaps option }

/// A source over stored maps.
let storedSource (stepHash: string) (stepName: string) (seed: int64) (stored: StoredMaps) =
    { StepHash = stepHash; StepName = stepName; Seed = seed; Count = stored.Count; Stored = Some stored }

/// A metric run's source.
let sourceOf (run: MetricRun) =
    { StepHash = run.Step.Hash; StepName = run.Step.Name; Seed = run.Seed
      Count = run.Count; Stored = run.Maps }

/// The maps of a block as the pass reads them (an empty tensor for a pass that reads none); the caller disposes them.
let private mapsOf (source: Source) (pass: Pass<'T>) (first: int) (n: int) =
    if not pass.ReadsMaps then torch.empty(0L)
    else
        match source.Stored with
        | Some stored -> stored.Rows(first, n)
        | None -> failwith $"{source.StepName}: the pass {pass.Name} reads the maps, which are not stored whole yet"

/// The name of a block's part: the metric step's hash, the pass and the block's inputs.
let partKey (source: Source) (pass: string) (first: int) (n: int) = $"{source.StepHash}.{pass}.block-{first}-{n}"

/// The file of a block's part.
let partFile (source: Source) (pass: string) (first: int) (n: int) = Artefacts.path "metrics" (partKey source pass first n) ".json"

/// The parts a metric step's blocks left in the cache (deleted once the step's result is stored).
let partsOf (stepHash: string) =
    let folder = Path.Combine(Artefacts.root (), "metrics")
    if Directory.Exists folder then Directory.GetFiles(folder, $"{stepHash}.*.block-*.json") |> List.ofArray else []

/// Deletes a metric step's block parts once its result is stored (the parts, a shard's or a run's as it went, are
/// in the result).
let deleteParts (stepHash: string) = for part in partsOf stepHash do File.Delete part

let private blocksOf (source: Source) (pass: Pass<'T>) =
    Experiments.StoredMaps.Blocks (pass.Inputs |> Option.fold min source.Count) pass.Size

/// Every block's result, in order: read from its part where one is stored (a shard's, or an interrupted run's),
/// otherwise computed and stored as a part.
let over (source: Source) (pass: Pass<'T>) : 'T[] =
    use tieBreak = new torch.Generator(uint64 source.Seed, torch.CPU)
    [| for first, n in blocksOf source pass ->
         let file = partFile source pass.Name first n
         match pass.Read file with
         | Some result ->
             FeatureRanking.SkipRows(tieBreak, int64 n, pass.TieBreakSlots)
             result
         | None ->
             use maps = mapsOf source pass first n
             let result = pass.Compute first n maps tieBreak
             pass.Write file result
             result |]

/// `over` a metric run's maps.
let all (run: MetricRun) (pass: Pass<'T>) : 'T[] = over (sourceOf run) pass

/// A pass with its result type hidden: what a shard needs to share its blocks out.
type SharedPass =
    { /// Every block's key (the part's name) and its inputs, in order.
      Blocks: (string * int) list
      /// Computes and stores the blocks whose key is owned and that have no part yet; (blocks computed, blocks found stored).
      Share: (string -> bool) -> int * int }

/// The pass as a shard sees it.
let sharedOver (source: Source) (pass: Pass<'T>) : SharedPass =
    let blocks = blocksOf source pass
    let key (first, n) = partKey source pass.Name first n
    { Blocks = blocks |> List.map (fun (first, n) -> key (first, n), n)
      Share =
        fun owned ->
            let mutable computed, stored = 0, 0
            match blocks |> List.tryFindIndexBack (key >> owned) with
            | None -> ()
            | Some last ->
                use tieBreak = new torch.Generator(uint64 source.Seed, torch.CPU)
                for first, n in blocks |> List.take (last + 1) do
                    let file = partFile source pass.Name first n
                    if owned (key (first, n)) && not (File.Exists file) then
                        use maps = mapsOf source pass first n
                        pass.Write file (pass.Compute first n maps tieBreak)
                        computed <- computed + 1
                        Progress.say $"{source.StepName}: block of inputs {first}..{first + n - 1} ({pass.Name}) stored"
                    else
                        if owned (key (first, n)) then stored <- stored + 1
                        FeatureRanking.SkipRows(tieBreak, int64 n, pass.TieBreakSlots)
            computed, stored }

/// A metric run's pass as a shard sees it.
let shared (run: MetricRun) (pass: Pass<'T>) : SharedPass = sharedOver (sourceOf run) pass

/// Which shard computes each block: the largest blocks first, each to the shard with the fewest inputs so far (the
/// lowest index on a tie), so that the last, shorter block of each pass does not leave one shard the long ones. The
/// loads start from `initial` (the inputs each shard explains in the same wave's attribution calls). Every shard deals
/// alike, from the passes and the plan alone.
let deal (passes: SharedPass list) (count: int) (initial: int64[]) : Map<string, int> =
    if initial.Length <> count then invalidArg "initial" $"{initial.Length} initial loads for {count} shards"
    let load = Array.copy initial
    passes
    |> List.collect _.Blocks
    |> List.indexed
    |> List.sortBy (fun (order, (_, n)) -> -n, order)
    |> List.map (fun (_, (key, n)) ->
        let shard = Array.findIndex ((=) (Array.min load)) load
        load.[shard] <- load.[shard] + int64 n
        key, shard)
    |> Map.ofList

/// Shard `index` of `count`'s share of the passes' blocks (deal, from the `initial` loads); (blocks computed, blocks
/// found stored).
let share (passes: SharedPass list) (index: int) (count: int) (initial: int64[]) =
    let dealt = deal passes count initial
    let owned (key: string) = dealt.[key] = index
    passes |> List.fold (fun (computed, stored) p -> let c, s = p.Share owned in computed + c, stored + s) (0, 0)
