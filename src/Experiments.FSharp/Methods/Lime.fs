/// The `lime` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.Lime

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "lime"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Ribeiro et al. 2016 (Captum's Lime): weighted linear fit of f on random superpixel masks; on text the features are the words (each kept or replaced by <unk>; cell unused; use more samples than words, e.g. 1000)"
        (fields {
            let! samples = Fields.field (fun (n, _, _) -> n) Params.limeSamples
            and! cell = Fields.field (fun (_, c, _) -> c) Params.cell
            and! kernelWidth = Fields.field (fun (_, _, k) -> k) Params.kernelWidth
            return samples, cell, kernelWidth
        })
        Lime
        (function
        | Lime(n, c, k) -> Some(n, c, k)
        | _ -> None)

let entry =
    MethodEntry.shipped "perturbation" variant
        (fun kind ->
            match kind with
            | Lime(_, cell, _) -> { MethodFacts.slow MethodFacts.everywhere with PixelSizes = [ "cell", cell ] }
            | other -> MethodEntry.mismatch name other)
        (fun context kind ->
            match kind with
            | Lime(samples, cell, kernelWidth) ->
                match context.Model with
                | :? Attribution.Models.ReshapedModel as view when (view.Inner :? Attribution.Models.TextModel) ->
                    // Text: the words are the features, a dropped word becomes <unk> (as in the token metrics).
                    let text = view.Inner :?> Attribution.Models.TextModel
                    use noGrad = torch.no_grad()
                    use unknown = text.Embed(torch.tensor([| Attribution.Data.Vocabulary.Unknown |]))
                    use row = unknown.[0L]
                    Attribution.Methods.TokenLime(row, samples, kernelWidth) :> IAttributionMethod
                | _ -> Attribution.Methods.Lime(samples, cell, cell, kernelWidth)
            | other -> MethodEntry.mismatch name other)
