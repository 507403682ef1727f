/// The `smooth_grad_sq` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.SmoothGradSq

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "smooth_grad_sq"

let variant: Variant<MethodKind> =
    Variant.make name "Hooker et al. 2019 (SmoothGrad-Squared): E_z[(grad f(z))^2]" (sampling 1 isotropic) SmoothGradSq (function
        | SmoothGradSq p -> Some p
        | _ -> None)

let entry =
    MethodEntry.shipped "sampling" variant
        (fun kind ->
            match kind with
            | SmoothGradSq p -> { MethodFacts.everywhere with Sampling = Some p }
            | other -> MethodEntry.mismatch name other)
        (fun context kind ->
            match kind with
            | SmoothGradSq p -> Presets.SmoothGradSq(SamplerRegistry.build context p.Sampler, p.Samples)
            | other -> MethodEntry.mismatch name other)
