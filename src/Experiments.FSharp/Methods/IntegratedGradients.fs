/// The `integrated_gradients` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.IntegratedGradients

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "integrated_gradients"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Sundararajan et al. 2017, Eq. 1: (x - x') * int_0^1 grad f(x' + a(x - x')) da, baseline x' = 0"
        (fields {
            let! steps = Fields.field fst Params.steps
            and! rule = Fields.field snd Params.rule
            return steps, rule
        })
        IntegratedGradients
        (function
        | IntegratedGradients(s, r) -> Some(s, r)
        | _ -> None)

let entry =
    MethodEntry.shipped "path" variant
        (fun _ -> MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | IntegratedGradients(steps, rule) ->
                let engineRule =
                    match rule with
                    | GaussLegendre -> Attribution.Sampling.IntegrationRule.GaussLegendre
                    | RiemannLeft -> Attribution.Sampling.IntegrationRule.RiemannLeft
                    | RiemannRight -> Attribution.Sampling.IntegrationRule.RiemannRight
                    | RiemannMiddle -> Attribution.Sampling.IntegrationRule.RiemannMiddle
                    | RiemannTrapezoid -> Attribution.Sampling.IntegrationRule.RiemannTrapezoid
                Presets.IntegratedGradients(steps, engineRule)
            | other -> MethodEntry.mismatch name other)
