/// The `feature_suppression` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.FeatureSuppression

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "feature_suppression"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Luo et al., Sampling Matters, Eq. 11: E|grad f(x*)| with x* = x with pixels dropped with probability p (times x optionally)"
        (fields {
            let! p = Fields.field (fun (p, _, _) -> p) Params.dropProbability
            and! samples = Fields.field (fun (_, n, _) -> n) (Params.samples 1)
            and! timesInput = Fields.field (fun (_, _, t) -> t) Params.timesInput
            return p, samples, timesInput
        })
        FeatureSuppression
        (function
        | FeatureSuppression(p, n, t) -> Some(p, n, t)
        | _ -> None)

let entry =
    MethodEntry.shipped "sampling" variant
        (fun _ -> MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | FeatureSuppression(p, samples, timesInput) -> Presets.FeatureSuppression(p, samples, timesInput)
            | other -> MethodEntry.mismatch name other)
