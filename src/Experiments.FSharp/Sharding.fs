/// What one process of a run does: the whole run, or one part of a run split over processes (a cluster's jobs):
/// the prepare job (model and covariances), or one shard of the attribution steps (and of ROAR's training maps). A
/// plain run afterwards, with the same cache, assembles the shards' parts, computes the metrics and writes the report.
module Experiments.Sharding

open System

type RunMode =
    | Whole
    | PrepareOnly
    /// Every attribution step (and ROAR's training maps) assembled and stored whole, no metric: between the shards
    /// and a second wave of shards that shares out ROAR's points.
    | MapsOnly
    /// Shard `index` (from 0) of `count`.
    | ShardOf of index: int * count: int

/// The most shards a run may be split into (more than any cluster array this toolkit would fill).
[<Literal>]
let MaxShards = 100_000

/// `--shard I/N` read: I from 0 to N-1, N from 1 to MaxShards.
let parseShare (text: string) : Result<int * int, string> =
    let usage = $"--shard {text}: write I/N, shard I (from 0) of N shards, e.g. 0/4 ... 3/4"
    match text.Split '/' with
    | [| i; n |] ->
        match Int32.TryParse(i.Trim()), Int32.TryParse(n.Trim()) with
        | (true, index), (true, count) when count < 1 || count > MaxShards -> Error $"--shard {text}: the number of shards must be between 1 and {MaxShards}"
        | (true, index), (true, count) when index < 0 || index >= count -> Error $"--shard {text}: the shard index must be between 0 and {count - 1} for {count} shards (shards count from 0)"
        | (true, index), (true, count) -> Ok(index, count)
        | _ -> Error usage
    | _ -> Error usage

/// The mode of a run from its flags; more than one at once is an error.
let modeOf (prepare: bool) (maps: bool) (share: string option) : Result<RunMode, string> =
    match prepare, maps, share with
    | true, false, None -> Ok PrepareOnly
    | false, true, None -> Ok MapsOnly
    | false, false, Some text -> parseShare text |> Result.map ShardOf
    | false, false, None -> Ok Whole
    | _ -> Error "--prepare, --maps and --shard are different jobs of a cluster run: give one of them"
