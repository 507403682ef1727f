/// The `guided_ig` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.GuidedIntegratedGradients

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "guided_ig"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Kapishnikov et al. 2021: a path from 0 to x that moves the features with the smallest |grad f| first (PAIR-code library defaults)"
        (fields {
            let! steps = Fields.field (fun (s, _, _) -> s) (Param.int "steps" "path steps" (Some 200) 1 (Some Bounds.Draws))
            and! fraction = Fields.field (fun (_, f, _) -> f) (Param.float "fraction" "fraction of features moved per inner step" (Some 0.25) true 1.0)
            and! maxDist = Fields.field (fun (_, _, d) -> d) (Param.float "max_dist" "allowed deviation from the straight path, relative" (Some 0.02) false 1.0)
            return steps, fraction, maxDist
        })
        GuidedIntegratedGradients
        (function
        | GuidedIntegratedGradients(s, f, d) -> Some(s, f, d)
        | _ -> None)

let entry =
    MethodEntry.shipped "path" variant
        (fun _ -> MethodFacts.slow MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | GuidedIntegratedGradients(steps, fraction, maxDist) -> Attribution.Methods.GuidedIntegratedGradients(steps, fraction, maxDist)
            | other -> MethodEntry.mismatch name other)
