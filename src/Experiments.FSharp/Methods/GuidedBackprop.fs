/// The `guided_backprop` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.GuidedBackprop

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "guided_backprop"

let variant: Variant<MethodKind> =
    Variant.constant name "Springenberg et al. 2015: grad f(x) with each ReLU passing only positive gradients where its input was positive" GuidedBackprop

let entry =
    MethodEntry.shipped "propagation" variant
        (fun _ -> { MethodFacts.everywhere with ReplacesRelus = true })
        (fun context kind ->
            match kind with
            | GuidedBackprop -> GuidedBackpropagation(ReluRule.Guided)
            | other -> MethodEntry.mismatch name other)
