/// The `information_bottleneck` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.InformationBottleneck

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "information_bottleneck"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Schulz et al. 2020 (IBA): per-sample bottleneck Z = l R + (1 - l) eps at a stage; heatmap = KL capacity in bits"
        (fields {
            let! stage = Fields.field (fun (s, _, _) -> s) (Params.stageNamed "the layer carrying the bottleneck (text: lstm for text_lstm and text_bilstm, conv for text_cnn, norm for text_transformer; a word's score is its position's bits)")
            and! beta = Fields.field (fun (_, b, _) -> b) (Param.float "beta" "weight of the capacity in the loss" (Some 10.0) true 1e6)
            and! steps = Fields.field (fun (_, _, n) -> n) (Param.int "steps" "Adam steps (learning rate 1) on 10 noisy copies" (Some 10) 1 (Some Bounds.Draws))
            return stage, beta, steps
        })
        InformationBottleneck
        (function
        | InformationBottleneck(s, b, n) -> Some(s, b, n)
        | _ -> None)

let entry =
    MethodEntry.shipped "bottleneck" variant
        (fun kind ->
            match kind with
            | InformationBottleneck(stage, _, _) -> { MethodFacts.slow MethodFacts.everywhere with Stage = Some stage }
            | other -> MethodEntry.mismatch name other)
        (fun context kind ->
            match kind with
            | InformationBottleneck(stage, beta, steps) ->
                // The bottleneck's noise statistics: per element of the stage's activation over reference training images.
                let statistics = Attribution.Methods.InformationBottleneck.EstimateActivationStatistics(context.Model, stage, context.References 1000)
                Attribution.Methods.InformationBottleneck(statistics, beta, steps)
            | other -> MethodEntry.mismatch name other)
