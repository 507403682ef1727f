/// A folder the toolkit wrote and may therefore replace (a run folder, an export): a marker file inside it says so and
/// lists what it holds. These are the marker's reading and writing and the listing of a folder against it; RunFolder
/// and ExportFolder decide what their own markers mean.
module Experiments.MarkedFolder

open System.IO
open System.Text.Json
open Attribution.IO

let private json = JsonSerializerOptions(WriteIndented = true)

/// The marker `name` in `folder` when it is there, parses as 'm and passes `valid`; None otherwise (a user's file of
/// the same name is no marker).
let read<'m> (folder: string) (name: string) (valid: 'm -> bool) : 'm option =
    let file = Path.Combine(folder, name)
    if not (File.Exists file) then None
    else
        try
            match JsonSerializer.Deserialize(File.ReadAllText file, typeof<'m>, json) with
            | null -> None
            | parsed -> let m = unbox<'m> parsed in if valid m then Some m else None
        with _ -> None

/// Writes the marker `name` into `folder`, atomically.
let write (folder: string) (name: string) (marker: 'm) =
    AtomicFile.WriteAllText(Path.Combine(folder, name), JsonSerializer.Serialize(marker, json))

/// Every file and folder under `folder`, relative and '/'-separated, the marker `name` excluded.
let contents (folder: string) (name: string) =
    Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories)
    |> Seq.map (fun p -> Path.GetRelativePath(folder, p).Replace('\\', '/'))
    |> Seq.filter (fun p -> p <> name)
    |> Seq.sort
    |> List.ofSeq

/// At most five names, then how many more, for an error message.
let listed (names: string list) =
    let shown = names |> List.truncate 5 |> String.concat ", "
    if names.Length > 5 then $"{shown} and {names.Length - 5} more" else shown
