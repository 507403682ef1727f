/// Every data source: loads the spec's data as the runner's Domain, and hashes its content (and everything that shapes
/// it: placement, split, transforms) for the plan's keys.
module Experiments.DataSources

open System
open System.IO
open Attribution.Data
open Experiments
open Experiments.Domain

/// Loads the spec's dataset.
let load (spec: Spec) : Domain =
    match modalityOf spec.Data.Dataset with
    | Modality.Image | Modality.Tabular -> ImageDomain.load spec
    | Modality.Text -> TextDomain.load spec
    | Modality.Audio -> AudioDomain.load spec

/// The hash of the dataset's content and of everything that shapes it (placement, split), for the plan.
let dataHash (spec: Spec) =
    match spec.Data.Dataset with
    | FashionMnist | FashionCanvas ->
        let files = FashionMnist.ContentHash(Option.toObj spec.Data.Root, true) + FashionMnist.ContentHash(Option.toObj spec.Data.Root, false)
        match spec.Data.Dataset with
        | FashionCanvas -> Hashing.hash [ files; "canvas"; Hashing.canonical (CanvasOptions()); string spec.Seed ]
        | _ -> files
    | TensorFile path -> Hashing.hash [ "tensors"; Artefacts.contentHash path ]
    | ImageFolder s -> ImageDomain.folderHash s
    | TextFile path -> Hashing.hash [ "text-file"; Artefacts.contentHash path; Hashing.canonical (TextDomain.textOptions spec) ]
    | RegisteredDataset name -> Hashing.hash [ "registered-dataset"; name; (DatasetRegistry.find name).ContentKey () ]
    | SpamAssassin ->
        // The package is pinned; its files' names and sizes identify the corpus without reading 6,000 files.
        let root = SpamAssassin.ResolveRoot(Option.toObj spec.Data.Root)
        let listing =
            if Directory.Exists root then
                Directory.GetFiles(root, "*.json", SearchOption.AllDirectories)
                |> Array.map (fun f -> Path.GetRelativePath(root, f) + ":" + string (FileInfo(f).Length))
                |> Array.sort |> String.concat ";"
            else "missing"
        Hashing.hash [ "spam_assassin"; listing; Hashing.canonical (TextDomain.textOptions spec) ]
    | SpeechCommands ->
        // Synthesis is deterministic given its settings and the espeak-ng version (the engine's cache key).
        let options = AudioDomain.speechOptions spec
        Hashing.hash [ "speech_commands"; Attribution.Data.Audio.SpeechCommandsSynth.CacheKey(options, Attribution.Data.Audio.Espeak().Version()); Hashing.canonical (AudioDomain.clipOptions spec)
                       Hashing.canonical spec.Data.TrainLimit ]
