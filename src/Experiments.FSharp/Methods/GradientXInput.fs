/// The `gradient_x_input` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.GradientXInput

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "gradient_x_input"

let variant: Variant<MethodKind> =
    Variant.constant name "Shrikumar et al. 2016: x * grad f(x)" GradientXInput

let entry =
    MethodEntry.shipped "gradient" variant
        (fun _ -> MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | GradientXInput -> Presets.GradientXInput()
            | other -> MethodEntry.mismatch name other)
