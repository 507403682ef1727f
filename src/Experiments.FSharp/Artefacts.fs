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
