/// The `parameter_randomisation` metric: its parameters (with defaults and ranges) and facts; MetricRuns/ParameterRandomisation.fs evaluates it.
module Experiments.MetricEntries.ParameterRandomisation

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.make
        "parameter_randomisation"
        "Adebayo et al. 2018: re-initialise the layers from the output backwards and compare each map with the original (SSIM, Spearman)"
        (Fields.field id (Param.int "inputs" "explained inputs re-explained at each stage (the first ones)" (Some 20) 1 (Some Bounds.References)))
        ParameterRandomisation
        (function
        | ParameterRandomisation n -> Some n
        | _ -> None)

// Revision 2: the result keeps each input's values (Results.PerInput) for `attribution export`.
let entry = MetricEntry.shipped variant { Modalities = [ Modality.Image ]; Datasets = []; NeedsBoxes = false; Better = [ "final_ssim", false; "final_spearman", false ] } |> MetricEntry.revised 2
