/// The `deep_shap` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.DeepShap

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "deep_shap"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Lundberg and Lee 2017 (Captum's DeepLiftShap): DeepLIFT averaged over baselines drawn from the training images; always explains the logit"
        (Fields.field id (Param.int "references" "training images used as baselines (a seeded random subset)" (Some 20) 1 (Some Bounds.References)))
        DeepShap
        (function
        | DeepShap n -> Some n
        | _ -> None)

let entry =
    MethodEntry.shipped "propagation" variant
        (fun _ -> { MethodFacts.everywhere with ReplacesRelus = true })
        (fun context kind ->
            match kind with
            | DeepShap references -> FixedOutput(Attribution.Methods.DeepLiftShap(context.References references), Attribution.Methods.OutputFunction.Logit)
            | other -> MethodEntry.mismatch name other)
