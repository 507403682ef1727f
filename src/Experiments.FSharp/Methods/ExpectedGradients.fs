/// The `expected_gradients` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.ExpectedGradients

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "expected_gradients"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Erion et al. 2021: E_b,a[(x - b) (.) grad f(b + a (x - b))], b a training image, a ~ U(0, 1) (Captum's GradientShap)"
        (fields {
            let! samples = Fields.field fst (Params.samples 1)
            and! references = Fields.field snd Params.references
            return samples, references
        })
        ExpectedGradients
        (function
        | ExpectedGradients(n, r) -> Some(n, r)
        | _ -> None)

let entry =
    MethodEntry.shipped "path" variant
        (fun _ -> MethodFacts.everywhere)
        (fun context kind ->
            match kind with
            | ExpectedGradients(samples, references) -> Presets.ExpectedGradients(context.References references, samples)
            | other -> MethodEntry.mismatch name other)
