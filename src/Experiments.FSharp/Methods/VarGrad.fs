/// The `var_grad` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.VarGrad

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "var_grad"

let variant: Variant<MethodKind> =
    Variant.make name "Adebayo et al. 2018: Var_z[grad f(z)]" (sampling 2 isotropic) VarGrad (function
        | VarGrad p -> Some p
        | _ -> None)

let entry =
    MethodEntry.shipped "sampling" variant
        (fun kind ->
            match kind with
            | VarGrad p -> { MethodFacts.everywhere with Sampling = Some p }
            | other -> MethodEntry.mismatch name other)
        (fun context kind ->
            match kind with
            | VarGrad p -> Presets.VarGrad(SamplerRegistry.build context p.Sampler, p.Samples)
            | other -> MethodEntry.mismatch name other)
