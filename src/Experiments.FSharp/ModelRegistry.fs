/// Networks beyond the shipped ones: a user's own architecture, written in .NET, registered by name from their code;
/// YAML then takes `architecture: NAME`, trained by the run or loaded from a PyTorch state dict (`weights: f.pth`).
/// Layer methods reach its modules by path (forward hooks), as for a TorchVision model.
module Experiments.ModelRegistry

open System.Collections.Generic
open TorchSharp
open Experiments

type Network = torch.nn.Module<torch.Tensor, torch.Tensor>

/// A registered network: its name and doc, the data it takes, and its factory.
type ModelEntry =
    { Name: string
      Doc: string
      /// The modalities it takes: Image ([C, H, W]) and/or Tabular ([F]).
      Modalities: Modality list
      /// A fresh network (seeded by the caller) for one input's shape ([C, H, W], or [F] for tabular data) and the
      /// number of classes. Its ReLUs can be swapped for rule-based methods if it implements IRectifiedModel.
      Build: int[] -> int -> Network }

let private registered = List<ModelEntry>()

/// Adds a network defined outside the library; its name must be new (not a shipped architecture) and safe in yaml.
let register (entry: ModelEntry) =
    lock registered (fun () ->
        match Vocabulary.identProblem entry.Name with
        | Some problem -> invalidArg "entry" $"model name '{entry.Name}' {problem}"
        | None when Vocabulary.Names.architectures |> List.exists (fst >> (=) entry.Name) -> invalidArg "entry" $"'{entry.Name}' is a shipped architecture"
        | None when registered |> Seq.exists (fun e -> e.Name = entry.Name) -> invalidArg "entry" $"a model named '{entry.Name}' is already registered"
        | None ->
            if List.isEmpty entry.Modalities || entry.Modalities |> List.exists (fun m -> m <> Modality.Image && m <> Modality.Tabular) then
                invalidArg "entry" $"model '{entry.Name}': a registered network takes images and/or tabular data"
            registered.Add entry)

/// Removes a registered network (tests register and remove their own).
let unregister (name: string) = lock registered (fun () -> registered.RemoveAll(fun e -> e.Name = name) |> ignore)

/// The registered networks' names, in registration order.
let names () = lock registered (fun () -> [ for e in registered -> e.Name ])

let tryFind (name: string) = lock registered (fun () -> registered |> Seq.tryFind (fun e -> e.Name = name))

/// The entry of a registered name (a spec that names an unregistered one is refused by the decoder first).
let find (name: string) =
    tryFind name |> Option.defaultWith (fun () -> invalidArg "name" $"no model named '{name}' is registered (ModelRegistry.register)")
