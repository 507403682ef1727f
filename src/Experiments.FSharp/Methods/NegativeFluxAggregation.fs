/// The `neflag` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.NegativeFluxAggregation

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "neflag"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Li et al. 2023, Algorithm 1: negative flux aggregation, sum over walks of F(x~) (.) (x - x~) on the epsilon-sphere"
        (fields {
            let! samples = Fields.field (fun (n, _, _) -> n) Params.walks
            and! epsilon = Fields.field (fun (_, e, _) -> e) Params.epsilon
            and! maxSteps = Fields.field (fun (_, _, m) -> m) Params.maxSteps
            return samples, epsilon, maxSteps
        })
        NegativeFluxAggregation
        (function
        | NegativeFluxAggregation(n, e, m) -> Some(n, e, m)
        | _ -> None)

let entry =
    MethodEntry.shipped "path" variant
        (fun _ -> MethodFacts.slow MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | NegativeFluxAggregation(samples, epsilon, maxSteps) -> Attribution.Methods.NegativeFluxAggregation(samples, epsilon, maxSteps)
            | other -> MethodEntry.mismatch name other)
