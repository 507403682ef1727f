/// Where a run writes its report: `{output}/{name}/{run id}`, a folder of its own that no later run replaces, with
/// `{output}/{name}/latest` a link to the latest run. The toolkit writes only where it wrote before: the folder of a
/// spec's runs holds a marker saying which spec's runs it keeps, each run folder holds a marker listing the files the
/// run wrote, and anything else at `{output}/{name}` (a user's folder, a file, a link) is an error naming it, with
/// nothing touched. The layouts of earlier versions (one folder `{output}/{name}` replaced by each run; a link
/// `{output}/{name}` into `{output}/.runs/{name}`) are taken over by the next run, every earlier run kept.
module Experiments.RunFolder

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Text.RegularExpressions
open Attribution.IO

/// The marker's file name inside a run folder.
[<Literal>]
let MarkerName = ".attribution-run"

/// What the marker says: that the toolkit wrote this folder, for which spec name, and which files it holds.
type Marker =
    { Tool: string
      Name: string
      /// Paths relative to the run folder, '/'-separated; empty while the folder is being written.
      Files: string[] }

/// The marker's file name inside the folder of a spec's runs, `{output}/{name}`.
[<Literal>]
let RunsMarkerName = ".attribution-runs"

/// The link, inside the folder of a spec's runs, to its latest run.
[<Literal>]
let LatestName = "latest"

/// What the folder of a spec's runs says of itself: that the toolkit made it, for which spec name.
type RunsMarker = { Tool: string; Name: string }

let private tool = "attribution"

/// The folder `output` names, with a leading `~` or `~/` taken as the home folder (as a shell would).
let expandHome (path: string) =
    let home () = Environment.GetFolderPath Environment.SpecialFolder.UserProfile
    if path = "~" then home ()
    elif path.StartsWith "~/" then Path.Combine(home (), path.Substring 2)
    else path

/// The folder that keeps every run of the spec `name`, `{output}/{name}`, one folder per run id and `latest`.
let target (output: string) (name: string) = Path.GetFullPath(Path.Combine(expandHome output, name))

/// The folder of one run, `{output}/{name}/{run id}`.
let runFolder (output: string) (name: string) (runId: string) = Path.Combine(target output name, runId)

/// The link to the latest run, `{output}/{name}/latest`.
let latest (output: string) (name: string) = Path.Combine(target output name, LatestName)

let private readMarker (folder: string) =
    MarkedFolder.read<Marker> folder MarkerName (fun m -> m.Tool = tool && not (isNull (box m.Files)))

/// The marker of a folder of runs, when `folder` is one.
let readRunsMarker (folder: string) =
    MarkedFolder.read<RunsMarker> folder RunsMarkerName (fun m -> m.Tool = tool && not (isNull (box m.Name)))

let private writeMarker (folder: string) (marker: Marker) = MarkedFolder.write folder MarkerName marker

let private contents (folder: string) = MarkedFolder.contents folder MarkerName


/// Where the previous version kept the runs of `name`: `{output}/.runs/{name}`, with `{output}/{name}` a link into it.
let earlierHistory (output: string) (name: string) = Path.Combine(Path.GetFullPath(expandHome output), ".runs", name)

/// A new run id: the UTC time (sortable) and a random suffix.
let newRunId () = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss") + "-" + Guid.NewGuid().ToString("N").Substring(0, 6)

/// Where a link points, made absolute (None: not a link).
let private linkTarget (path: string) =
    match FileInfo(path).LinkTarget with
    | null -> None
    | t ->
        let folder = match Path.GetDirectoryName path with null -> "." | d -> d
        Some(Path.GetFullPath(Path.Combine(folder, t)))

/// Whether `final` is the previous version's link to one of the runs of `name`.
let private isEarlierLink (output: string) (name: string) (final: string) =
    match linkTarget final with
    | Some t -> (match Path.GetDirectoryName t with null -> false | d -> d = earlierHistory output name)
    | None -> false

let private isLink (path: string) = (FileInfo path).LinkTarget |> isNull |> not

let private another = "move it away, or choose another name or --output"

/// Why a run of `name` may not be written under `output`; None when it may: `{output}/{name}` is absent, the folder
/// of this spec's runs, or a layout of an earlier version for this spec (a run folder it replaced on every run, or
/// its link into `{output}/.runs/{name}`).
let problem (output: string) (name: string) : string option =
    let outputFolder = Path.GetFullPath(expandHome output)
    let final = target output name
    if File.Exists outputFolder then Some $"the output folder {outputFolder} is a file; name a folder (output: or --output)"
    elif isLink final then
        if isEarlierLink output name final then None
        else Some $"{final} is a link the toolkit did not make; the toolkit does not replace it: {another}"
    elif File.Exists final then Some $"{final} is a file, not the folder of a spec's runs; the toolkit does not replace it: {another}"
    elif not (Directory.Exists final) then None
    else
        match readRunsMarker final, readMarker final with
        | Some m, _ when m.Name = name -> None
        | Some m, _ -> Some $"{final} holds the runs of another spec ('{m.Name}'); {another}"
        | None, Some m when m.Name = name -> None
        | None, Some m -> Some $"{final} holds the run of another spec ('{m.Name}'); {another}"
        | None, None ->
            Some($"{final} exists and was not written by this toolkit (it has neither a {RunsMarkerName} nor a {MarkerName} marker); "
                 + $"a run never writes into a folder it did not create: {another}")

let private processAlive (pid: int) =
    try
        use p = Process.GetProcessById pid
        not p.HasExited
    with _ -> false

/// Deletes what dead processes left in `folder`: the entries whose name matches `pattern` (its group `pid` a process
/// no longer alive) and that `ours` recognises as the toolkit's; a live process's are left alone.
let private removeLeftovers (folder: string) (pattern: Regex) (ours: string -> bool) (remove: string -> unit) =
    if Directory.Exists folder && not (isLink folder) then
        for entry in Directory.EnumerateFileSystemEntries folder |> List.ofSeq do
            let m = pattern.Match(match Path.GetFileName entry with null -> "" | n -> n)
            if m.Success && not (processAlive (int m.Groups.["pid"].Value)) && ours entry then
                try remove entry with :? IOException | :? UnauthorizedAccessException -> ()

/// What processes killed while writing a report left, cleaned up by the next run of the name (a live process's are left
/// alone): staging folders, each holding the run marker, in the folder of the spec's runs and where earlier versions
/// staged (beside `{output}/{name}`, and in `{output}/.runs/{name}`); a link made beside `latest` and not yet renamed
/// (AtomicLink); and the folder of runs made beside its place and not yet renamed (prepareRunsFolder), its marker alone.
let cleanLeftovers (output: string) (name: string) =
    let outputFolder = Path.GetFullPath(expandHome output)
    let final = target output name
    let sweepStaging (folder: string) (pattern: string) =
        removeLeftovers folder (Regex pattern) (fun dir -> not (isLink dir) && (readMarker dir).IsSome) (fun dir ->
            Directory.Delete(dir, true)
            Progress.say $"removed {dir}, left by a run that was killed while writing its report")
    let staged = @"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}\.partial-(?<pid>\d+)-[0-9a-f]{8}$"
    sweepStaging outputFolder ("^" + Regex.Escape name + @"\.(partial|previous)-(?<pid>\d+)-[0-9a-f]{8}$")
    sweepStaging (earlierHistory output name) staged
    if (readRunsMarker final).IsSome then
        sweepStaging final staged
        removeLeftovers final (Regex("^" + Regex.Escape LatestName + @"\.link-(?<pid>\d+)-[0-9a-f]{32}$")) isLink File.Delete
    let onlyItsMarker (dir: string) =
        not (isLink dir) && (readRunsMarker dir).IsSome && List.ofSeq (Directory.EnumerateFileSystemEntries dir) = [ Path.Combine(dir, RunsMarkerName) ]
    removeLeftovers outputFolder (Regex("^" + Regex.Escape name + @"\.new-(?<pid>\d+)-[0-9a-f]{8}$")) onlyItsMarker (fun dir -> Directory.Delete(dir, true))

/// Makes `{output}/{name}` the folder of the spec's runs, taking over an earlier version's layout: its link into
/// `{output}/.runs/{name}` is removed and the runs there are moved in; its single run folder is kept whole as run
/// `before-run-ids-{time}`. Each step leaves a state the next call finishes from, so a crash loses no run.
let private prepareRunsFolder (output: string) (name: string) =
    let final = target output name
    let earlier = earlierHistory output name
    // Another run of the name may take the layout over at the same time: a move whose source it moved first is
    // skipped (moves and deletes that lose such a race raise IOException, the source being gone).
    let raced (source: string) (action: unit -> unit) =
        try action () with :? IOException when not (Path.Exists source) -> ()
    if isLink final then File.Delete final // the previous version's link (checked by `problem`); its runs are in `earlier`
    elif Directory.Exists final && (readRunsMarker final).IsNone then
        // the first version's run folder (checked by `problem`: the toolkit's, for this name), kept whole with anything added to it
        Directory.CreateDirectory earlier |> ignore
        let kept = Path.Combine(earlier, "before-run-ids-" + Directory.GetLastWriteTimeUtc(final).ToString("yyyyMMdd-HHmmss"))
        raced final (fun () -> Directory.Move(final, kept))
    if not (Directory.Exists final) then
        // made beside and renamed into place with its marker, so that no other process sees it unmarked
        let fresh = $"""{final}.new-{Environment.ProcessId}-{Guid.NewGuid().ToString("N").Substring(0, 8)}"""
        Directory.CreateDirectory fresh |> ignore
        MarkedFolder.write fresh RunsMarkerName { Tool = tool; Name = name }
        try Directory.Move(fresh, final)
        with :? IOException when Directory.Exists final -> Directory.Delete(fresh, true) // another run made it first
    // the other run may also remove the emptied folders between a check and a listing: a missing folder is empty
    let entries (folder: string) = try Directory.EnumerateFileSystemEntries folder |> List.ofSeq with :? DirectoryNotFoundException -> []
    for entry in entries earlier do
        let moved = Path.Combine(final, match Path.GetFileName entry with null -> "" | n -> n)
        if not (Path.Exists moved) then
            raced entry (fun () -> if Directory.Exists entry then Directory.Move(entry, moved) else File.Move(entry, moved))
    for folder in [ earlier; Path.GetDirectoryName earlier |> string ] do
        if Directory.Exists folder && List.isEmpty (entries folder) then
            try Directory.Delete folder with :? IOException -> () // emptied by another run, or filled again

/// Writes a run of `name` under `output` through `write` (which fills the folder it is given) and returns its folder,
/// `{output}/{name}/{run id}`, never replaced by a later run. The folder is staged beside its final place and renamed
/// into place whole; then `{output}/{name}/latest` is re-pointed to it atomically.
let publish (output: string) (name: string) (runId: string) (write: string -> unit) =
    match problem output name with
    | Some message -> raise (SpecProblem("output", message))
    | None -> ()
    prepareRunsFolder output name
    let folder = runFolder output name runId
    let staging = $"""{folder}.partial-{Environment.ProcessId}-{Guid.NewGuid().ToString("N").Substring(0, 8)}"""
    Directory.CreateDirectory staging |> ignore
    // The marker first, so that a staging folder left by a killed process is recognisably the toolkit's.
    writeMarker staging { Tool = tool; Name = name; Files = [||] }
    write staging
    writeMarker staging { Tool = tool; Name = name; Files = contents staging |> List.filter (fun p -> File.Exists(Path.Combine(staging, p))) |> Array.ofList }
    Directory.Move(staging, folder)
    // relative, so that the output folder can be moved or mounted elsewhere whole
    AtomicLink.Point(latest output name, runId)
    folder
