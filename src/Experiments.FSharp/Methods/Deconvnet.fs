/// The `deconvnet` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.Deconvnet

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "deconvnet"

let variant: Variant<MethodKind> =
    Variant.constant name "Zeiler and Fergus 2014: grad f(x) with each ReLU passing the positive part of the gradient" Deconvnet

let entry =
    MethodEntry.shipped "propagation" variant
        (fun _ -> { MethodFacts.everywhere with ReplacesRelus = true })
        (fun context kind ->
            match kind with
            | Deconvnet -> GuidedBackpropagation(ReluRule.Deconvnet)
            | other -> MethodEntry.mismatch name other)
