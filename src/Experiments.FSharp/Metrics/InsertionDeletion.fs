/// The `insertion_deletion` metric: its parameters (with defaults and ranges) and facts; MetricRuns/InsertionDeletion.fs evaluates it.
module Experiments.MetricEntries.InsertionDeletion

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.make
        "insertion_deletion"
        "Petsiuk et al. 2018 / Li et al. 2023: deletion and insertion curves (most important first) on a black and a blurred substrate, AUCs, Difference = insertion - deletion, and the two rounds' average"
        (fields {
            let! pixels = Fields.field fst (Param.int "pixels_per_step" "pixels changed per step (28 = one Fashion-MNIST row; at most the image's pixels)" (Some 28) 1 (Some Bounds.Pixels))
            and! sigma = Fields.field snd (Param.float "blur_sigma" "sigma of the blurred substrate, in pixels (NeFLAG: 20)" (Some 20.0) true Bounds.Magnitude)
            return pixels, sigma
        })
        InsertionDeletion
        (function
        | InsertionDeletion(p, s) -> Some(p, s)
        | _ -> None)

// Revision 2: the result keeps each input's values (Results.PerInput) for `attribution export`.
let entry = MetricEntry.shipped variant { Modalities = [ Modality.Image; Modality.Text; Modality.Audio ]; Datasets = []; NeedsBoxes = false; Better = [ "deletion", false; "insertion", true; "difference", true ] } |> MetricEntry.revised 2
