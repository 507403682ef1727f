/// The `input_iba` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.InputIba

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "input_iba"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Zhang et al. 2021: IBA at a stage (beta_feat), a WGAN fits the input mask so the stage's features under the input noise match the bottleneck's (RMSProp 5e-5, clip 0.01, 5 critic steps per generator step), then the input bottleneck with the Prop. 3 KL (beta_input, Adam lr 1); heatmap = input capacity in bits (or the mask)"
        (fields {
            let! stage = Fields.field (fun (s: InputIbaSpec) -> s.Stage) (Params.stageNamed "the layer carrying the feature bottleneck (text: lstm for text_lstm and text_bilstm, conv for text_cnn, norm for text_transformer; the reference code's text settings are beta_feat 0.5, beta_input 0.01, steps 20)")
            and! betaFeature = Fields.field (fun (s: InputIbaSpec) -> s.BetaFeature) (Param.float "beta_feat" "capacity weight of the feature bottleneck (stage 1)" (Some 10.0) true 1e6)
            and! betaInput = Fields.field (fun (s: InputIbaSpec) -> s.BetaInput) (Param.float "beta_input" "capacity weight of the input bottleneck (stage 3)" (Some 20.0) true 1e6)
            and! epochs = Fields.field (fun (s: InputIbaSpec) -> s.Epochs) (Param.int "epochs" "WGAN epochs (stage 2; 0 skips it: lambda_G stays at its initialisation, the feature capacity upsampled to the input)" (Some 20) 0 (Some Bounds.Epochs))
            and! steps = Fields.field (fun (s: InputIbaSpec) -> s.Steps) (Param.int "steps" "Adam steps of the input bottleneck (stage 3)" (Some 60) 1 (Some Bounds.Draws))
            and! showMask = Fields.field (fun (s: InputIbaSpec) -> s.ShowMask) (Param.bool "show_mask" "the map is the input mask Lambda* (the paper's figures) instead of the capacity in bits" (Some false))
            return { Stage = stage; BetaFeature = betaFeature; BetaInput = betaInput; Epochs = epochs; Steps = steps; ShowMask = showMask }
        })
        InputIba
        (function
        | InputIba s -> Some s
        | _ -> None)

let entry =
    MethodEntry.shipped "bottleneck" variant
        (fun kind ->
            match kind with
            | InputIba p -> { MethodFacts.slow MethodFacts.everywhere with Stage = Some p.Stage }
            | other -> MethodEntry.mismatch name other)
        (fun context kind ->
            match kind with
            | InputIba p ->
                let references = context.References 1000
                let features = Attribution.Methods.InformationBottleneck.EstimateActivationStatistics(context.Model, p.Stage, references)
                let map = if p.ShowMask then Attribution.Methods.InputIbaMap.Mask else Attribution.Methods.InputIbaMap.CapacityBits
                let gan, bottleneck =
                    match Attribution.Methods.InputLayouts.Of(context.Model, references) with
                    | Attribution.Methods.InputLayout.TokenSequence ->
                        // Text (the reference code's text setting): the noise is a typical word, estimated over the references' words.
                        let lengths = Attribution.Methods.TokenScores.Words(references).sum(1L)
                        let inputs = Attribution.Methods.InputStatistics.EstimateTokens(references, lengths)
                        Attribution.Methods.InputMaskGan(p.Epochs, maskLearningRate = 0.03), Attribution.Methods.InputBottleneck(inputs, p.BetaInput, p.Steps, learningRate = 0.5, sigma = 0.0)
                    | _ ->
                        let inputs = Attribution.Methods.InputStatistics.Estimate(references, [| 0 |])
                        Attribution.Methods.InputMaskGan(p.Epochs), Attribution.Methods.InputBottleneck(inputs, p.BetaInput, p.Steps)
                Attribution.Methods.InputIba(Attribution.Methods.InformationBottleneck(features, p.BetaFeature), gan, bottleneck, map)
            | other -> MethodEntry.mismatch name other)
