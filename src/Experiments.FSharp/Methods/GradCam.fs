/// The `grad_cam` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.GradCam

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "grad_cam"

let variant: Variant<MethodKind> =
    Variant.make name "Selvaraju et al. 2017: ReLU(sum_k mean(d f / d A_k) A_k) at a stage, upsampled to the input" (Fields.field id Params.stage) GradCam (function
        | GradCam s -> Some s
        | _ -> None)

let entry =
    MethodEntry.shipped "layer" variant
        (fun kind ->
            match kind with
            | GradCam stage -> { MethodFacts.imagesOnly with Stage = Some stage }
            | other -> MethodEntry.mismatch name other)
        (fun context kind ->
            match kind with
            | GradCam stage -> Attribution.Methods.GradCam(stage)
            | other -> MethodEntry.mismatch name other)
