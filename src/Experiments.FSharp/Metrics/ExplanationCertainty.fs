/// The `explanation_certainty` metric: its parameters (with defaults and ranges) and facts; MetricRuns/ExplanationCertainty.fs evaluates it.
module Experiments.MetricEntries.ExplanationCertainty

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.make
        "explanation_certainty"
        "Luo et al., Sampling Matters: mutual information between pixel values and their attributions (KSG, k = 3, nats)"
        (Fields.field id (Param.int "pairs" "(pixel, attribution) pairs sampled for the estimate" (Some 4096) 10 (Some 1_000_000)))
        ExplanationCertainty
        (function
        | ExplanationCertainty n -> Some n
        | _ -> None)

// Revision 2: pairs drawn by Floyd's algorithm (memory for the pairs alone) where a permutation of every pixel chose them,
// and the jackknife interval.
let entry = MetricEntry.shipped variant { MetricFacts.everywhere with Better = [ "mutual_information_nats", true ] } |> MetricEntry.revised 2
