/// The `occlusion` method: its parameters (with defaults and ranges), facts and engine method.
module Experiments.MethodEntries.Occlusion

open TorchSharp
open Attribution.Methods
open Experiments
open Experiments.Vocabulary
open Experiments.Building

[<Literal>]
let private name = "occlusion"

let variant: Variant<MethodKind> =
    Variant.make
        name
        "Zeiler and Fergus 2014 (Captum's Occlusion): f(x) - f(x with a window set to 0), averaged over the windows covering a pixel"
        (fields {
            let! window = Fields.field fst Params.window
            and! stride = Fields.field snd Params.stride
            return window, stride
        })
        Occlusion
        (function
        | Occlusion(w, s) -> Some(w, s)
        | _ -> None)

let entry =
    MethodEntry.shipped "perturbation" variant
        (fun kind ->
            match kind with
            | Occlusion(window, stride) -> { MethodFacts.pixelsOrFeatures with PixelSizes = [ "window", window; "stride", stride ] }
            | other -> MethodEntry.mismatch name other)
        (fun context kind ->
            match kind with
            | Occlusion(window, stride) -> Attribution.Methods.Occlusion(window, window, stride, stride)
            | other -> MethodEntry.mismatch name other)
