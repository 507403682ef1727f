/// The folder `attribution export RUN --to FOLDER` writes. An export replaces only what it wrote itself: its folder
/// holds a marker listing its files, and an existing FOLDER is written only when it is empty or such an export with
/// nothing else in it. Anything else there (a user's folder, a run folder, a file added to an export) is an error
/// naming it, and nothing is touched. The export is built beside FOLDER and swapped in whole, as run folders are.
module Experiments.ExportFolder

open System
open System.IO
open System.Text.Json
open Attribution.IO

/// The marker's file name inside an export.
[<Literal>]
let MarkerName = ".attribution-export"

/// What the marker says: that the toolkit wrote this export, of which run folder, and which files it holds.
type Marker =
    { Tool: string
      Run: string
      /// Paths relative to the export, '/'-separated; empty while the export is being written.
      Files: string[] }

let private tool = "attribution"

let private readMarker (folder: string) =
    MarkedFolder.read<Marker> folder MarkerName (fun m -> m.Tool = tool && not (isNull (box m.Files)))

let private writeMarker (folder: string) (marker: Marker) = MarkedFolder.write folder MarkerName marker

let private contents (folder: string) = MarkedFolder.contents folder MarkerName

let private listed = MarkedFolder.listed

/// The marker's files and the folders they lie in.
let private owned (m: Marker) =
    let folders = m.Files |> Seq.collect (fun f -> let parts = f.Split '/' in [ for i in 1 .. parts.Length - 1 -> String.Join("/", parts.[.. i - 1]) ])
    Set.union (set m.Files) (set folders)

/// Why `target` may not be written; None when it may (absent, empty, or an export with nothing else in it).
let problem (target: string) : string option =
    let target = Path.GetFullPath target
    let refuse (what: string) = Some $"{target} {what}; an export never replaces what it did not write: name a new or empty folder"
    if File.Exists target then refuse "is a file"
    elif not (Directory.Exists target) then None
    elif Seq.isEmpty (Directory.EnumerateFileSystemEntries target) then None
    else
        match readMarker target with
        | Some m ->
            match contents target |> List.filter (fun p -> not ((owned m).Contains p)) with
            | [] -> None
            | extra -> refuse $"is an earlier export that now also holds what the export did not write ({listed extra})"
        | None when File.Exists(Path.Combine(target, RunFolder.MarkerName)) -> refuse "is a run folder, not an export"
        | None -> refuse $"exists, is not empty and is not an export (it has no {MarkerName} marker; it holds {listed (contents target)})"

/// Deletes an export the toolkit wrote (or an empty folder): the files its marker lists, the marker, then the folders
/// if empty. Anything else found there (added since the check) is kept, with the folder.
let private removeOwn (folder: string) =
    match readMarker folder with
    | Some m ->
        for f in m.Files do
            let path = Path.Combine(folder, f)
            if File.Exists path then File.Delete path
        File.Delete(Path.Combine(folder, MarkerName))
    | None -> ()
    for dir in Directory.EnumerateDirectories(folder, "*", SearchOption.AllDirectories) |> Seq.sortByDescending _.Length |> List.ofSeq do
        if Seq.isEmpty (Directory.EnumerateFileSystemEntries dir) then Directory.Delete dir
    if Seq.isEmpty (Directory.EnumerateFileSystemEntries folder) then Directory.Delete folder
    else Progress.say $"kept {folder}: it holds files the export did not write"

/// Writes the export `target` of the run folder `run` through `write` (which fills the folder it is given) and returns
/// its full path. `fail` raises the error of a refused target (see `problem`, checked again just before the swap).
let publish (target: string) (run: string) (fail: string -> exn) (write: string -> unit) =
    let final = Path.GetFullPath target
    match problem final with
    | Some message -> raise (fail message)
    | None -> ()
    let suffix = string Environment.ProcessId + "-" + Guid.NewGuid().ToString("N").Substring(0, 8)
    let staging = $"{final}.partial-{suffix}"
    Directory.CreateDirectory staging |> ignore
    // The marker first, so that a staging folder left by a killed process is recognisably the toolkit's.
    writeMarker staging { Tool = tool; Run = run; Files = [||] }
    try
        write staging
        writeMarker staging { Tool = tool; Run = run; Files = contents staging |> List.filter (fun p -> File.Exists(Path.Combine(staging, p))) |> Array.ofList }
        match problem final with
        | Some message -> raise (fail message)
        | None -> ()
        let previous = $"{final}.previous-{suffix}"
        if Directory.Exists final then Directory.Move(final, previous)
        Directory.Move(staging, final)
        if Directory.Exists previous then removeOwn previous
        final
    with _ ->
        // The staging folder is this process's own (its name holds our process id and a fresh GUID).
        if Directory.Exists staging then (try Directory.Delete(staging, true) with :? IOException | :? UnauthorizedAccessException -> ())
        reraise ()
