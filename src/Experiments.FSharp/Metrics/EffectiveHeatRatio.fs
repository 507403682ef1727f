/// The `effective_heat_ratio` metric: its parameters (with defaults and ranges) and facts; MetricRuns/EffectiveHeatRatio.fs evaluates it.
module Experiments.MetricEntries.EffectiveHeatRatio

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.constant "effective_heat_ratio" "Zhang et al. 2021 (InputIBA): heat inside the ground-truth box over pixels above each quantile threshold, area under that curve; inputs whose box covers at most a third of the image (needs dataset fashion_canvas)" EffectiveHeatRatio

// Revision 2: heat is |map| (revision 1 min-max scaled signed maps, which put heat on zero attribution).
// Revision 3: the result keeps each input's values (Results.PerInput) for `attribution export`.
let entry = MetricEntry.shipped variant { Modalities = [ Modality.Image ]; Datasets = []; NeedsBoxes = true; Better = [ "ehr", true ] } |> MetricEntry.revised 3
