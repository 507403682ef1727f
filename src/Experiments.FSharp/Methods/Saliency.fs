/// The `saliency` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.Saliency

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "saliency"

let variant: Variant<MethodKind> =
    Variant.make name "Simonyan et al. 2014: |grad f(x)| (abs: false keeps the sign)" (Fields.field id Params.absolute) Saliency (function
        | Saliency a -> Some a
        | _ -> None)

let entry =
    MethodEntry.shipped "gradient" variant
        (fun _ -> MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | Saliency absolute -> Presets.Saliency(absolute)
            | other -> MethodEntry.mismatch name other)
