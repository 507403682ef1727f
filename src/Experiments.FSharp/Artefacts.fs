/// The cache: artefacts keyed by their step's content hash, written atomically, so an interrupted run
/// resumes where it stopped and an identical step is never computed twice.
module Experiments.Artefacts

open System
open System.IO
open System.Text.Json
open Attribution.IO

/// The cache folder: $ATTRIBUTION_CACHE, else .cache in the working directory.
let root () =
    match Environment.GetEnvironmentVariable "ATTRIBUTION_CACHE" with
    | null | "" -> Path.GetFullPath ".cache"
    | dir -> Path.GetFullPath dir

let path (kind: string) (hash: string) (extension: string) = Path.Combine(root (), kind, hash + extension)

let private json = JsonSerializerOptions(WriteIndented = true, NumberHandling = Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals)

let writeJson (file: string) (value: 'T) = AtomicFile.WriteAllText(file, JsonSerializer.Serialize(value, json))

let readJson<'T> (file: string) : 'T =
    match JsonSerializer.Deserialize(File.ReadAllText file, typeof<'T>, json) with
    | null -> failwith $"{file}: the artefact is empty; delete it to recompute"
    | value -> unbox<'T> value

/// Returns the cached JSON artefact, or computes, stores and returns it.
let jsonOrCompute<'T> (file: string) (compute: unit -> 'T) : 'T * bool =
    if File.Exists file then readJson<'T> file, true
    else
        let value = compute ()
        writeJson file value
        value, false

/// The cache folder, created if missing; an unusable one (a file, not writable) is the user's to fix (exit 3).
let ensureRoot () =
    let dir = root ()
    if File.Exists dir then raise (Experiments.CacheProblem $"the cache folder {dir} is a file (ATTRIBUTION_CACHE or .cache); name a folder")
    try
        Directory.CreateDirectory dir |> ignore
        let probe = Path.Combine(dir, $".write-test-{Environment.ProcessId}")
        File.WriteAllText(probe, "")
        File.Delete probe
    with :? IOException | :? UnauthorizedAccessException as e ->
        raise (Experiments.CacheProblem $"the cache folder {dir} cannot be written ({e.Message}); set ATTRIBUTION_CACHE to a writable folder")
