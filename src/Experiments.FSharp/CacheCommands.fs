/// `attribution cache verify` and `attribution cache gc`: the cache as a whole. Every artefact is sealed with its
/// checksum when written (Artefacts.fs); verify checks them all, gc removes what no given spec needs.
module Experiments.CacheCommands

open System
open System.IO
open System.Text.Json
open Attribution.Data
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

/// The image folders' decoded copies (ImageDomain.decodedFolder), named by their data hash, and the leftovers of
/// decodes that were killed (NAME.tmp-ID).
let private decodedCopies () =
    let dir = ImageDomain.decodedRoot ()
    let all = if Directory.Exists dir then Directory.GetDirectories dir |> Array.sort |> List.ofArray else []
    all |> List.partition (fun d -> not ((Path.GetFileName d |> nonNull).Contains ".tmp-"))

/// Checks every artefact and every decoded image folder; with `repair`, moves the bad artefacts into the quarantine
/// folder and removes bad decoded folders (both are recomputed when a run needs them). Exit code 3 when bad ones are
/// left in place.
let verify (repair: bool) =
    let all = artefacts ()
    let bad = all |> List.choose (fun f -> problemOf f |> Option.map (fun p -> f, p))
    for file, problem in bad do
        if repair then Artefacts.quarantine file problem else printfn "corrupt: %s: %s" (relative file) problem
    printfn "%d artefacts in %s: %d sound, %d corrupt%s" all.Length (Artefacts.root ()) (all.Length - bad.Length) bad.Length
            (if repair && not bad.IsEmpty then " (moved to quarantine/)" else "")
    // a decoded copy holds nothing of its own (the image folder is the source): a bad one is removed, not kept
    let decoded, _ = decodedCopies ()
    let badDecoded = decoded |> List.choose (fun d -> DecodedImageFolder.Verify d |> Option.ofObj |> Option.map (fun p -> d, p))
    for folder, problem in badDecoded do
        if repair then
            Directory.Delete(folder, true)
            printfn "removed %s: %s (decoded again when a run needs it)" (relative folder) problem
        else printfn "corrupt: %s: %s" (relative folder) problem
    if not decoded.IsEmpty then
        printfn "%d decoded image folders: %d sound, %d corrupt%s" decoded.Length (decoded.Length - badDecoded.Length) badDecoded.Length
                (if repair && not badDecoded.IsEmpty then " (removed)" else "")
    let left = if repair then 0 else bad.Length + badDecoded.Length
    if left > 0 then raise (CacheProblem $"{left} corrupt artefacts or decoded folders; run `attribution cache verify --repair` to quarantine or remove them (they are recomputed when needed)")

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
    // decoded image folders no plan reads (a plan's data hash names its images' decoded copy), and killed decodes
    let decoded, leftovers = decodedCopies ()
    let dataHashes = plans |> List.map _.DataHash |> set
    let folders =
        (decoded |> List.filter (fun d -> not (dataHashes.Contains(Path.GetFileName d |> nonNull))))
        @ (leftovers |> List.filter (fun d -> DateTime.UtcNow - Directory.GetLastWriteTimeUtc d > liveWrite))
    let folderBytes (d: string) = Directory.GetFiles(d, "*", SearchOption.AllDirectories) |> Array.sumBy (fun f -> FileInfo(f).Length)
    let bytes = (files |> List.sumBy (fun f -> FileInfo(f).Length)) + (folders |> List.sumBy folderBytes)
    for f in files do
        printfn "%s %s" (if dryRun then "would remove" else "removed") (relative f)
        if not dryRun then File.Delete f
    for d in folders do
        printfn "%s %s/" (if dryRun then "would remove" else "removed") (relative d)
        if not dryRun then Directory.Delete(d, true)
    printfn "%s %d files and folders (%.1f MB) that none of the %d specs needs; kept %d artefacts"
        (if dryRun then "would remove" else "removed") (files.Length + folders.Length) (float bytes / 1e6) plans.Length (artefacts().Length - (if dryRun then unused.Length else 0))
