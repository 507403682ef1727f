/// Data sets beyond the shipped ones: a user's loader, written in .NET, registered by name from their code; YAML then
/// takes `dataset: NAME`. Images [N, C, H, W] or tabular rows (held as [N, 1, 1, F], see Attribution.Data.TensorFile).
module Experiments.DatasetRegistry

open System.Collections.Generic
open Attribution.Data
open Experiments

/// What a registered loader returns: the training and test sets, the test inputs' regions if known (a Box or a
/// PixelMask each, for the localisation metrics), and for tabular data the features' names.
type DatasetParts =
    { Train: ImageDataset
      Test: ImageDataset
      Boxes: IRegion[] option
      Features: string list option }

/// A registered data set.
type DatasetEntry =
    { Name: string
      Doc: string
      /// Image or Tabular.
      Modality: Modality
      /// One input's shape [C, H, W] (tabular: [1, 1, F]), known without loading (validation reads it).
      Shape: int * int * int
      HasBoxes: bool
      /// Identifies the content (a version, a hash of the files): cached results are keyed by it, so it must change
      /// whenever the data does.
      ContentKey: unit -> string
      /// Loads the data; the seed is the spec's (for a loader that draws a split).
      Load: int -> DatasetParts }

let private registered = List<DatasetEntry>()

/// Adds a data set defined outside the library; its name must be new (not a shipped data set) and safe in yaml.
let register (entry: DatasetEntry) =
    lock registered (fun () ->
        match Vocabulary.identProblem entry.Name with
        | Some problem -> invalidArg "entry" $"dataset name '{entry.Name}' {problem}"
        | None when Vocabulary.Names.datasets |> List.exists (fst >> (=) entry.Name) -> invalidArg "entry" $"'{entry.Name}' is a shipped dataset"
        | None when registered |> Seq.exists (fun e -> e.Name = entry.Name) -> invalidArg "entry" $"a dataset named '{entry.Name}' is already registered"
        | None ->
            if entry.Modality <> Modality.Image && entry.Modality <> Modality.Tabular then
                invalidArg "entry" $"dataset '{entry.Name}': a registered data set holds images or tabular rows"
            registered.Add entry)

/// Removes a registered data set (tests register and remove their own).
let unregister (name: string) = lock registered (fun () -> registered.RemoveAll(fun e -> e.Name = name) |> ignore)

let names () = lock registered (fun () -> [ for e in registered -> e.Name ])

let tryFind (name: string) = lock registered (fun () -> registered |> Seq.tryFind (fun e -> e.Name = name))

let find (name: string) =
    tryFind name |> Option.defaultWith (fun () -> invalidArg "name" $"no dataset named '{name}' is registered (DatasetRegistry.register)")
