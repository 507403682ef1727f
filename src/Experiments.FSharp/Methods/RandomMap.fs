/// The `random` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.RandomMap

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "random"

let variant: Variant<MethodKind> =
    Variant.constant name "the chance baseline: U(0, 1) independently for every input element (ROAR's and the InputIBA paper's random attribution)" RandomMap

let entry =
    MethodEntry.shipped "baseline" variant
        (fun _ -> MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | RandomMap -> Attribution.Methods.RandomAttribution()
            | other -> MethodEntry.mismatch name other)
