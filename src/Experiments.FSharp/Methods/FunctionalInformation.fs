/// The `functional_information` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.FunctionalInformation

open TorchSharp
open Attribution.Methods
open Attribution.Sampling
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "functional_information"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Gat et al. 2022, Eq. 13: E_z~N(x, C)[(C grad f)_i grad f_i / f], C = scale * Sigma_class (or stdev^2 I)"
        (sampling 1 (Variant.dflt covarianceGaussian))
        FunctionalInformation
        (function
        | FunctionalInformation p -> Some p
        | _ -> None)

let entry =
    MethodEntry.shipped "sampling" variant
        (fun kind ->
            match kind with
            | FunctionalInformation p -> { MethodFacts.everywhere with Sampling = Some p; DividesByOutput = true }
            | other -> MethodEntry.mismatch name other)
        (fun context kind ->
            match kind with
            | FunctionalInformation p ->
                match SamplerRegistry.build context p.Sampler with
                | :? IGaussianSampler as g -> Presets.FunctionalInformation(g, p.Samples)
                | other -> failwith $"functional_information needs a Gaussian sampler, got {other.Describe()}"
            | other -> MethodEntry.mismatch name other)
