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

/// Why the run folder of `name` under `output` may not be written; None when it may (absent, or the toolkit's own).
let problem (output: string) (name: string) : string option =
    let outputFolder = Path.GetFullPath(expandHome output)
    let final = target output name
    if File.Exists outputFolder then Some $"the output folder {outputFolder} is a file; name a folder (output: or --output)"
    elif File.Exists final then Some $"{final} is a file, not a run folder; the toolkit does not replace it: move it away, or choose another name or --output"
    elif not (Directory.Exists final) then None
    else
        match readMarker final with
        | None ->
            Some($"{final} exists and was not written by this toolkit (it has no {MarkerName} marker); a run never replaces a folder it did not create: "
                 + "move it away, or choose another name or --output")
        | Some m when m.Name <> name ->
            Some $"{final} holds the run of another spec ('{m.Name}'); move it away, or choose another name or --output"
        | Some m ->
            let known = set m.Files
            // A listed file's folder is the toolkit's too (files are written in sub-folders only with their folder).
            let knownFolders = m.Files |> Seq.collect (fun f -> let parts = f.Split '/' in [ for i in 1 .. parts.Length - 1 -> String.Join("/", parts.[.. i - 1]) ]) |> set
            match contents final |> List.filter (fun p -> not (known.Contains p || knownFolders.Contains p)) with
            | [] -> None
            | extra ->
                Some($"{final} holds what the toolkit did not write ({listed extra}); a run never deletes those: "
                     + "move them out of the run folder, or choose another name or --output")

let private processAlive (pid: int) =
    try
        use p = Process.GetProcessById pid
        not p.HasExited
    with _ -> false

/// Staging and replaced folders of this name left by processes that died (killed while writing a report): each holds
/// the marker, so it is the toolkit's; a live process's are left alone.
let cleanLeftovers (output: string) (name: string) =
    let outputFolder = Path.GetFullPath(expandHome output)
    if Directory.Exists outputFolder then
        let pattern = Regex("^" + Regex.Escape name + @"\.(partial|previous)-(\d+)-[0-9a-f]{8}$")
        for dir in Directory.EnumerateDirectories outputFolder |> List.ofSeq do
            let m = pattern.Match(match Path.GetFileName dir with null -> "" | n -> n)
            if m.Success && not (processAlive (int m.Groups.[2].Value)) && (readMarker dir).IsSome then
                try
                    Directory.Delete(dir, true)
                    Progress.say $"removed {dir}, left by a run that was killed while writing its report"
                with :? IOException | :? UnauthorizedAccessException -> ()

/// Deletes a run folder the toolkit wrote: the files its marker lists, the marker, then the folders if empty. Anything
/// else found there (added since the check) is kept, with the folder.
let private removeOwn (folder: string) =
    match readMarker folder with
    | None -> ()
    | Some m ->
        for f in m.Files do
            let path = Path.Combine(folder, f)
            if File.Exists path then File.Delete path
        File.Delete(Path.Combine(folder, MarkerName))
        for dir in Directory.EnumerateDirectories(folder, "*", SearchOption.AllDirectories) |> Seq.sortByDescending _.Length |> List.ofSeq do
            if Seq.isEmpty (Directory.EnumerateFileSystemEntries dir) then Directory.Delete dir
        if Seq.isEmpty (Directory.EnumerateFileSystemEntries folder) then Directory.Delete folder
        else Progress.say $"kept {folder}: it holds files the toolkit did not write"

/// Writes the run folder of `name` under `output` through `write` (which fills the folder it is given) and returns
/// its path. The files are written beside the target and swapped in whole; a previous run folder of the same name is
/// replaced only if it is the toolkit's (see `problem`), checked again just before the swap.
let publish (output: string) (name: string) (write: string -> unit) =
    let final = target output name
    let fail message = raise (SpecProblem("output", message))
    match problem output name with
    | Some message -> fail message
    | None -> ()
    let suffix () = string Environment.ProcessId + "-" + Guid.NewGuid().ToString("N").Substring(0, 8)
    let staging = $"{final}.partial-{suffix ()}"
    Directory.CreateDirectory staging |> ignore
    // The marker first, so that a staging folder left by a killed process is recognisably the toolkit's.
    writeMarker staging { Tool = tool; Name = name; Files = [||] }
    write staging
    writeMarker staging { Tool = tool; Name = name; Files = contents staging |> List.filter (fun p -> File.Exists(Path.Combine(staging, p))) |> Array.ofList }
    // Another run of the same spec may swap its folder in at the same moment: retry until ours is in place.
    let rec swap attempt =
        match problem output name with
        | Some message ->
            removeOwn staging
            fail message
        | None ->
            let previous = $"{final}.previous-{suffix ()}"
            try
                if Directory.Exists final then Directory.Move(final, previous)
                Directory.Move(staging, final)
                if Directory.Exists previous then removeOwn previous
            with :? IOException when attempt < 20 ->
                if Directory.Exists previous then removeOwn previous
                Threading.Thread.Sleep(50 * (attempt + 1))
                swap (attempt + 1)
    swap 0
    final
