/// The `mip_in` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.MipIn

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "mip_in"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "MIP-IN (mutual-information-preserving inverse network; designed from the abstract of arXiv 2104.06629, see docs/methods.md): each stage inverted by the transpose of its gated local map times a learned mixing, trained top-down on reference inputs, projected per input to keep the target logit; explains the logit (fashion_cnn only)"
        (fields {
            let! steps = Fields.field fst (Param.int "steps" "Adam steps per stage when training the inverse" (Some 200) 1 (Some Bounds.Draws))
            and! references = Fields.field snd (Param.int "references" "training images the inverse is trained on (a seeded random subset)" (Some 256) 2 (Some Bounds.References))
            return steps, references
        })
        MipIn
        (function
        | MipIn(s, r) -> Some(s, r)
        | _ -> None)

let entry =
    MethodEntry.shipped "propagation" variant
        (fun _ -> { MethodFacts.everywhere with InvertsStages = true })
        (fun context kind ->
            match kind with
            | MipIn(steps, references) ->
                let inverse = Attribution.Methods.MipInInverse.Train(context.Model, context.References references, Attribution.Methods.MipInTrainingOptions(Steps = steps))
                FixedOutput(Attribution.Methods.MipIn(inverse), Attribution.Methods.OutputFunction.Logit)
            | other -> MethodEntry.mismatch name other)
