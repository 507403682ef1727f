/// The `integrated_gradients` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.IntegratedGradients

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "integrated_gradients"

/// tolerance and max_steps say how far `steps: auto` goes; with a count of steps they would be ignored, so they are errors.
let private autoOnly (steps: IntegrationSteps, _: IntegrationRule, tolerance: float option, maxSteps: int option) =
    match steps with
    | AutoSteps -> []
    | FixedSteps n ->
        [ for key, given in [ "tolerance", tolerance.IsSome; "max_steps", maxSteps.IsSome ] do
            if given then
                yield { Path = key; Message = $"applies to steps: auto only (steps is {n}); remove it, or write steps: auto"; Found = None } ]

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Sundararajan et al. 2017, Eq. 1: (x - x') * int_0^1 grad f(x' + a(x - x')) da, baseline x' = 0"
        (fields {
            let! steps = Fields.field (fun (s, _, _, _) -> s) Params.integrationSteps
            and! rule = Fields.field (fun (_, r, _, _) -> r) Params.rule
            and! tolerance = Fields.field (fun (_, _, t, _) -> t) Params.tolerance
            and! maxSteps = Fields.field (fun (_, _, _, m) -> m) Params.maxIntegrationSteps
            return steps, rule, tolerance, maxSteps
         }
         |> Fields.satisfying autoOnly)
        (fun (steps, rule, tolerance, maxSteps) ->
            match steps with
            | FixedSteps n -> IntegratedGradients(n, rule)
            | AutoSteps ->
                IntegratedGradientsAuto(defaultArg tolerance AdaptiveIntegratedGradients.DefaultTolerance,
                                        defaultArg maxSteps AdaptiveIntegratedGradients.DefaultMaxSteps, rule))
        (function
        | IntegratedGradients(s, r) -> Some(FixedSteps s, r, None, None)
        | IntegratedGradientsAuto(t, m, r) -> Some(AutoSteps, r, Some t, Some m)
        | _ -> None)

let private engineRule (rule: IntegrationRule) =
    match rule with
    | GaussLegendre -> Attribution.Sampling.IntegrationRule.GaussLegendre
    | RiemannLeft -> Attribution.Sampling.IntegrationRule.RiemannLeft
    | RiemannRight -> Attribution.Sampling.IntegrationRule.RiemannRight
    | RiemannMiddle -> Attribution.Sampling.IntegrationRule.RiemannMiddle
    | RiemannTrapezoid -> Attribution.Sampling.IntegrationRule.RiemannTrapezoid

let entry =
    MethodEntry.shipped "path" variant
        (fun _ -> MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | IntegratedGradients(steps, rule) -> Presets.IntegratedGradients(steps, engineRule rule)
            | IntegratedGradientsAuto(tolerance, maxSteps, rule) -> AdaptiveIntegratedGradients(tolerance, maxSteps, engineRule rule)
            | other -> MethodEntry.mismatch name other)
