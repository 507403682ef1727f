/// The `smooth_grad` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.SmoothGrad

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "smooth_grad"

let variant: Variant<MethodKind> =
    Variant.make name "Smilkov et al. 2017: E_z[grad f(z)]" (sampling 1 isotropic) SmoothGrad (function
        | SmoothGrad p -> Some p
        | _ -> None)

let entry =
    MethodEntry.shipped "sampling" variant
        (fun kind ->
            match kind with
            | SmoothGrad p -> { MethodFacts.everywhere with Sampling = Some p }
            | other -> MethodEntry.mismatch name other)
        (fun context kind ->
            match kind with
            | SmoothGrad p -> Presets.SmoothGrad(SamplerRegistry.build context p.Sampler, p.Samples)
            | other -> MethodEntry.mismatch name other)
