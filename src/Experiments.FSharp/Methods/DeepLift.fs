/// The `deep_lift` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.DeepLift

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "deep_lift"

let variant: Variant<MethodKind> =
    Variant.constant name "Shrikumar et al. 2017 (Rescale; Captum's DeepLift): (x - b) times rescaled multipliers, b = 0; always explains the logit" DeepLift

let entry =
    MethodEntry.shipped "propagation" variant
        (fun _ -> { MethodFacts.everywhere with ReplacesRelus = true })
        (fun context kind ->
            match kind with
            | DeepLift -> FixedOutput(Attribution.Methods.DeepLift(), Attribution.Methods.OutputFunction.Logit)
            | other -> MethodEntry.mismatch name other)
