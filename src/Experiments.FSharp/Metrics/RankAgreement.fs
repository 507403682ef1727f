/// The `rank_agreement` metric: its parameters (with defaults and ranges) and facts; MetricSteps.fs evaluates it.
module Experiments.MetricEntries.RankAgreement

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.constant "rank_agreement" "Spearman rank correlation between the maps of every pair of methods" RankAgreement

let entry = MetricEntry.shipped variant MetricFacts.everywhere
