/// The `rank_agreement` metric: its parameters (with defaults and ranges) and facts; MetricRuns/RankAgreement.fs evaluates it.
module Experiments.MetricEntries.RankAgreement

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.constant "rank_agreement" "Spearman rank correlation between the maps of every pair of methods" RankAgreement

// Revision 2: the result keeps each input's values (Results.PerInput) for `attribution export`.
let entry = MetricEntry.shipped variant MetricFacts.everywhere |> MetricEntry.revised 2
