/// The `sensitivity_n` metric: its parameters (with defaults and ranges) and facts; MetricRuns/SensitivityN.fs evaluates it.
module Experiments.MetricEntries.SensitivityN

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.make
        "sensitivity_n"
        "Ancona et al. 2018: for N on a log grid, Pearson correlation between the attribution summed over N random pixels and the drop of f when they are set to 0"
        (fields {
            let! masks = Fields.field fst (Param.int "masks" "random masks per N, shared across inputs" (Some 100) 2 (Some Bounds.Draws))
            and! points = Fields.field snd (Param.int "points" "values of N on the log grid" (Some 12) 1 (Some 100))
            return masks, points
        })
        SensitivityN
        (function
        | SensitivityN(m, p) -> Some(m, p)
        | _ -> None)

// Revision 2: the result keeps each input's values (Results.PerInput) for `attribution export`.
let entry = MetricEntry.shipped variant { Modalities = [ Modality.Image; Modality.Text; Modality.Tabular; Modality.Audio ]; Datasets = []; NeedsBoxes = false; Better = [ "mean_correlation", true ] } |> MetricEntry.revised 2
