/// The `extremal_perturbation` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.ExtremalPerturbation

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "extremal_perturbation"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Fong et al. 2019 (TorchRay's extremal_perturbation, preserve, blurred substrate): a smooth mask of the given area maximising the target's logit; SGD lr 0.01 momentum 0.9, area weight 300 growing 1.0035 a step; mask step, smoothing and blur scaled from 224 px to the image"
        (fields {
            let! area = Fields.field fst (Params.openFraction "area" "fraction of the image the mask keeps (TorchRay's default 0.1)" (Some 0.1))
            and! iterations = Fields.field snd (Param.int "iterations" "optimisation steps (TorchRay: 800)" (Some 800) 1 (Some Bounds.Draws))
            return area, iterations
        })
        ExtremalPerturbation
        (function
        | ExtremalPerturbation(a, n) -> Some(a, n)
        | _ -> None)

let entry =
    MethodEntry.shipped "perturbation" variant
        (fun _ -> MethodFacts.slow MethodFacts.imagesOnly)
        (fun context kind ->
            match kind with
            | ExtremalPerturbation(area, iterations) -> Attribution.Methods.ExtremalPerturbation(area, iterations)
            | other -> MethodEntry.mismatch name other)
