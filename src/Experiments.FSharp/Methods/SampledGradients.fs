/// The `sampled_gradients` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.SampledGradients

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "sampled_gradients"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "sampler x statistic: any sampler with any statistic of grad f(z), optionally times (x - baseline) (SmoothGrad, SmoothGradSQ, VarGrad and FI are presets)"
        (fields {
            let! samples = Fields.field (fun ((p: SamplingParams), _, _, _) -> p.Samples) (Params.samples 2)
            and! sampler = Fields.field (fun ((p: SamplingParams), _, _, _) -> p.Sampler) (Vocabulary.sampler isotropic)
            and! statistic = Fields.field (fun (_, s, _, _) -> s) Params.statistic
            and! timesInput = Fields.field (fun (_, _, t, _) -> t) Params.timesInput
            and! baseline = Fields.field (fun (_, _, _, b) -> b) Params.multiplierBaseline
            return { Samples = samples; Sampler = sampler }, statistic, timesInput, baseline
        })
        (fun (p, s, t, b) -> SampledGradients(p, s, t, b))
        (function
        | SampledGradients(p, s, t, b) -> Some(p, s, t, b)
        | _ -> None)

let entry =
    MethodEntry.shipped "sampling" variant
        (fun kind ->
            match kind with
            | SampledGradients(p, statistic, _, _) -> { MethodFacts.everywhere with Sampling = Some p; DividesByOutput = (statistic = FisherRatio) }
            | other -> MethodEntry.mismatch name other)
        (fun context kind ->
            match kind with
            | SampledGradients(p, statistic, timesInput, baseline) ->
                let kind =
                    match statistic with
                    | Mean -> StatisticKind.Mean
                    | MeanSquare -> StatisticKind.MeanSquare
                    | Variance -> StatisticKind.Variance
                    | MeanAbsolute -> StatisticKind.MeanAbsolute
                    | FisherRatio -> StatisticKind.FisherRatio
                Attribution.Methods.SampledGradients("sampled_gradients", SamplerRegistry.build context p.Sampler, p.Samples, kind,
                                                     (if timesInput then Multiplier.Input else Multiplier.None), baseline = baseline)
            | other -> MethodEntry.mismatch name other)
