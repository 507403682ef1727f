/// `attribution cache verify` and `attribution cache gc`: the cache as a whole. Every artefact is sealed with its
/// checksum when written (Artefacts.fs); verify checks them all, gc removes what no given spec needs.
module Experiments.CacheCommands

open System
open System.IO
open System.Text.Json
open Attribution.IO
open Attribution.Models

/// The folders that hold keyed artefacts; everything else in the cache (synthesised data, input memos) is left alone.
let private artefactFolders = [ "models"; "covariances"; "attributions"; "metrics" ]

/// A temporary file younger than this may belong to a write in progress in another process: left alone.
let private liveWrite = TimeSpan.FromHours 1.0

let private artefacts () =
    let inProgress (f: string) = f.EndsWith AtomicFile.TempSuffix && DateTime.UtcNow - File.GetLastWriteTimeUtc f < liveWrite
    [ for folder in artefactFolders do
        let dir = Path.Combine(Artefacts.root (), folder)
        if Directory.Exists dir then yield! Directory.GetFiles dir |> Array.filter (inProgress >> not) |> Array.sort ]

let private relative (file: string) = Path.GetRelativePath(Artefacts.root (), file)

/// Why an artefact cannot be trusted, or None when it is sound.
let problemOf (file: string) : string option =
    let name = Path.GetFileName file |> nonNull
    if name.EndsWith AtomicFile.TempSuffix then Some "an unfinished write left by a killed process"
    elif name.EndsWith ".safetensors" then
        let check = Safetensors.Verify file
        if check.IsValid then None else Some(check.Message.Substring(min check.Message.Length (file.Length + 2)))
    elif name.EndsWith ".json" then
        match Artefacts.tryReadJson<JsonElement> file with
        | Ok _ -> None
        | Error reason -> Some reason
    else Some "not an artefact of this toolkit"

/// Checks every artefact; with `repair`, moves the bad ones into the quarantine folder (they are recomputed when a
/// run needs them). Exit code 3 when bad artefacts are left in place.
let verify (repair: bool) =
    let all = artefacts ()
    let bad = all |> List.choose (fun f -> problemOf f |> Option.map (fun p -> f, p))
    for file, problem in bad do
        if repair then Artefacts.quarantine file problem else printfn "corrupt: %s: %s" (relative file) problem
    printfn "%d artefacts in %s: %d sound, %d corrupt%s" all.Length (Artefacts.root ()) (all.Length - bad.Length) bad.Length
            (if repair && not bad.IsEmpty then " (moved to quarantine/)" else "")
    if not bad.IsEmpty && not repair then raise (CacheProblem $"{bad.Length} corrupt artefacts; run `attribution cache verify --repair` to quarantine them (they are recomputed when needed)")

/// Removes every artefact no plan reads or writes (parts of unfinished steps of those plans are kept), and the
/// quarantine folder. With `dryRun`, only lists them.
let gc (plans: Plan.Plan list) (dryRun: bool) =
    let keep = plans |> List.collect Plan.artefactKeys |> set
    // An artefact's name starts with its key: HASH.json, HASH.safetensors, HASH.part-START-ROWS.safetensors.
    let keyOf (file: string) = (Path.GetFileName file |> nonNull).Split('.').[0]
    let unused = artefacts () |> List.filter (fun f -> not (keep.Contains(keyOf f)))
    let quarantined =
        let dir = Artefacts.quarantineFolder ()
        if Directory.Exists dir then Directory.GetFiles dir |> List.ofArray else []
    let files = unused @ quarantined
    let bytes = files |> List.sumBy (fun f -> FileInfo(f).Length)
    for f in files do
        printfn "%s %s" (if dryRun then "would remove" else "removed") (relative f)
        if not dryRun then File.Delete f
    printfn "%s %d files (%.1f MB) that none of the %d specs needs; kept %d artefacts"
        (if dryRun then "would remove" else "removed") files.Length (float bytes / 1e6) plans.Length (artefacts().Length - (if dryRun then unused.Length else 0))
