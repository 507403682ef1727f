/// The run folder `{output}/{name}` a run writes its report into. The toolkit replaces only what it wrote itself:
/// every run folder holds a marker file listing the files the run wrote, and a folder may be replaced only when it
/// holds that marker, for the same name, and nothing else than what the marker lists. Anything else at the target
/// (a user's folder, a file, a user's file added to a run folder) is an error naming it, and nothing is touched.
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

let private tool = "attribution"

/// The folder `output` names, with a leading `~` or `~/` taken as the home folder (as a shell would).
let expandHome (path: string) =
    let home () = Environment.GetFolderPath Environment.SpecialFolder.UserProfile
    if path = "~" then home ()
    elif path.StartsWith "~/" then Path.Combine(home (), path.Substring 2)
    else path

/// The full path of the run folder of a spec.
let target (output: string) (name: string) = Path.GetFullPath(Path.Combine(expandHome output, name))

let private readMarker (folder: string) =
    MarkedFolder.read<Marker> folder MarkerName (fun m -> m.Tool = tool && not (isNull (box m.Files)))

let private writeMarker (folder: string) (marker: Marker) = MarkedFolder.write folder MarkerName marker

let private contents (folder: string) = MarkedFolder.contents folder MarkerName

let private listed = MarkedFolder.listed

/// The folder that keeps every run of `name` under `output`, one folder per run id: `{output}/.runs/{name}`.
let history (output: string) (name: string) = Path.Combine(Path.GetFullPath(expandHome output), ".runs", name)

/// A new run id: the UTC time (sortable) and a random suffix.
let newRunId () = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss") + "-" + Guid.NewGuid().ToString("N").Substring(0, 6)

/// Where a link points, made absolute (None: not a link).
let private linkTarget (path: string) =
    match FileInfo(path).LinkTarget with
    | null -> None
    | t ->
        let folder = match Path.GetDirectoryName path with null -> "." | d -> d
        Some(Path.GetFullPath(Path.Combine(folder, t)))

/// Whether `final` is the toolkit's link to one of the runs of `name`.
let private isOwnLink (output: string) (name: string) (final: string) =
    match linkTarget final with
    | Some t -> (match Path.GetDirectoryName t with null -> false | d -> d = history output name)
    | None -> false

/// Why the run of `name` under `output` may not be written; None when it may: `{output}/{name}` is absent, the
/// toolkit's link to an earlier run, or an earlier run folder of the toolkit (before runs were kept; it is moved into
/// the history whole, with anything added to it).
let problem (output: string) (name: string) : string option =
    let outputFolder = Path.GetFullPath(expandHome output)
    let final = target output name
    if File.Exists outputFolder then Some $"the output folder {outputFolder} is a file; name a folder (output: or --output)"
    elif (FileInfo final).LinkTarget |> isNull |> not then
        if isOwnLink output name final then None
        else Some $"{final} is a link the toolkit did not make; the toolkit does not replace it: move it away, or choose another name or --output"
    elif File.Exists final then Some $"{final} is a file, not a run folder; the toolkit does not replace it: move it away, or choose another name or --output"
    elif not (Directory.Exists final) then None
    else
        match readMarker final with
        | None ->
            Some($"{final} exists and was not written by this toolkit (it has no {MarkerName} marker); a run never replaces a folder it did not create: "
                 + "move it away, or choose another name or --output")
        | Some m when m.Name <> name ->
            Some $"{final} holds the run of another spec ('{m.Name}'); move it away, or choose another name or --output"
        | Some _ -> None

let private processAlive (pid: int) =
    try
        use p = Process.GetProcessById pid
        not p.HasExited
    with _ -> false

/// Staging folders (and links) left by processes that died while writing a report: each staging folder holds the
/// marker, so it is the toolkit's; a live process's are left alone. Looks in the run history and, for folders of
/// versions that replaced run folders, beside `{output}/{name}`.
let cleanLeftovers (output: string) (name: string) =
    let outputFolder = Path.GetFullPath(expandHome output)
    let sweep (folder: string) (pattern: Regex) =
        if Directory.Exists folder then
            for dir in Directory.EnumerateDirectories folder |> List.ofSeq do
                let m = pattern.Match(match Path.GetFileName dir with null -> "" | n -> n)
                if m.Success && (FileInfo dir).LinkTarget = null && not (processAlive (int m.Groups.[2].Value)) && (readMarker dir).IsSome then
                    try
                        Directory.Delete(dir, true)
                        Progress.say $"removed {dir}, left by a run that was killed while writing its report"
                    with :? IOException | :? UnauthorizedAccessException -> ()
    sweep outputFolder (Regex("^" + Regex.Escape name + @"\.(partial|previous)-(\d+)-[0-9a-f]{8}$"))
    sweep (history output name) (Regex(@"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}\.(partial)-(\d+)-[0-9a-f]{8}$"))

/// Writes a run of `name` under `output` through `write` (which fills the folder it is given) and returns
/// `{output}/{name}`. The run gets its own folder, `{output}/.runs/{name}/{run id}`, never replaced by a later run;
/// `{output}/{name}` is a link to the latest run, re-pointed atomically once the new folder is complete. A run folder
/// of a version that replaced run folders is first moved into the history (as run `before-run-ids`).
let publish (output: string) (name: string) (runId: string) (write: string -> unit) =
    let final = target output name
    let fail message = raise (SpecProblem("output", message))
    match problem output name with
    | Some message -> fail message
    | None -> ()
    let runs = history output name
    Directory.CreateDirectory runs |> ignore
    if Directory.Exists final && (FileInfo final).LinkTarget = null then
        // an earlier run folder (checked by `problem`: the toolkit's, for this name): kept whole in the history
        let kept = Path.Combine(runs, "before-run-ids-" + Directory.GetLastWriteTimeUtc(final).ToString("yyyyMMdd-HHmmss"))
        Directory.Move(final, kept)
    let folder = Path.Combine(runs, runId)
    let staging = $"""{folder}.partial-{Environment.ProcessId}-{Guid.NewGuid().ToString("N").Substring(0, 8)}"""
    Directory.CreateDirectory staging |> ignore
    // The marker first, so that a staging folder left by a killed process is recognisably the toolkit's.
    writeMarker staging { Tool = tool; Name = name; Files = [||] }
    write staging
    writeMarker staging { Tool = tool; Name = name; Files = contents staging |> List.filter (fun p -> File.Exists(Path.Combine(staging, p))) |> Array.ofList }
    Directory.Move(staging, folder)
    // relative, so that the output folder can be moved or mounted elsewhere whole
    Attribution.IO.AtomicLink.Point(final, Path.GetRelativePath(Path.GetFullPath(expandHome output), folder))
    final
