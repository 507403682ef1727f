/// The `taylor` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.Taylor

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "taylor"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Deng et al. 2020 (unified Taylor framework): exact Taylor terms of f(x) - f(b) around a constant baseline b via Hessian-vector products; the map adds the chosen terms, each pairwise interaction split half and half (d double-backward rows per input: slow on large inputs)"
        (fields {
            let! order = Fields.field (fun (o, _, _) -> o) (Param.int "order" "highest order of the expansion (1 to 3)" (Some 2) 1 (Some 3))
            and! terms = Fields.field (fun (_, t, _) -> t) (Param.choice "terms" "terms" "which terms the map adds up" (Some AllTerms) Names.taylorTerms)
            and! baseline = Fields.field (fun (_, _, b) -> b) (Param.floatIn "baseline" "the constant baseline input b (0 = black)" (Some 0.0) -Bounds.Magnitude Bounds.Magnitude)
            return order, terms, baseline
        })
        Taylor
        (function
        | Taylor(o, t, b) -> Some(o, t, b)
        | _ -> None)

let entry =
    MethodEntry.shipped "taylor" variant
        (fun _ -> MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | Taylor(order, terms, baseline) ->
                let engineTerms =
                    match terms with
                    | FirstOrder -> TaylorTerms.First
                    | IndependentTerms -> TaylorTerms.Independent
                    | InteractiveTerms -> TaylorTerms.Interactive
                    | AllTerms -> TaylorTerms.All
                Attribution.Methods.TaylorAttribution(order, engineTerms, baseline)
            | other -> MethodEntry.mismatch name other)
