/// The `negative_perturbation` metric: its parameters (with defaults and ranges) and facts; MetricRuns/NegativePerturbation.fs evaluates it.
module Experiments.MetricEntries.NegativePerturbation

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.make
        "negative_perturbation"
        "Gat et al. 2022, Sec. 5.2: mask the least important fractions; post-hoc accuracy and consistency AUC"
        (fields {
            let! fractions = Fields.field (fun (s: NegativePerturbationSpec) -> s.Fractions) Params.fractions
            and! mask = Fields.field (fun (s: NegativePerturbationSpec) -> s.MaskValue) Params.maskValue
            return { Fractions = fractions; MaskValue = mask }
        })
        NegativePerturbation
        (function
        | NegativePerturbation s -> Some s
        | _ -> None)

// Revision 2: the result keeps each input's values (Results.PerInput) for `attribution export`.
let entry = MetricEntry.shipped variant { MetricFacts.everywhere with Better = [ "accuracy_gt", true; "accuracy_predicted", true; "consistency", true ] } |> MetricEntry.revised 2
