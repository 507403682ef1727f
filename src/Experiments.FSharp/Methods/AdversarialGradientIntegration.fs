/// The `agi` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.AdversarialGradientIntegration

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "agi"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Pan et al. 2021: sum over false classes of -grad f (.) delta along an adversarial walk towards each"
        (fields {
            let! k = Fields.field (fun (k, _, _) -> k) (Param.int "false_classes" "false classes walked towards (all when >= classes - 1)" (Some 20) 1 (Some 1000))
            and! epsilon = Fields.field (fun (_, e, _) -> e) (Param.float "epsilon" "step size of the attack, in input units" (Some 0.05) true 1.0)
            and! iterations = Fields.field (fun (_, _, m) -> m) (Param.int "max_iterations" "longest walk" (Some 20) 1 (Some Bounds.Draws))
            return k, epsilon, iterations
        })
        AdversarialGradientIntegration
        (function
        | AdversarialGradientIntegration(k, e, m) -> Some(k, e, m)
        | _ -> None)

let entry =
    MethodEntry.shipped "path" variant
        (fun _ -> MethodFacts.slow MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | AdversarialGradientIntegration(k, epsilon, iterations) -> Attribution.Methods.AdversarialGradientIntegration(k, epsilon, iterations)
            | other -> MethodEntry.mismatch name other)
