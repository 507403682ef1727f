/// The `taylor_fidelity` metric: its parameters (with defaults and ranges) and facts; MetricRuns/TaylorFidelity.fs evaluates it.
module Experiments.MetricEntries.TaylorFidelity

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.make
        "taylor_fidelity"
        "Deng et al. 2020: approximation error |sum a - (f(x) - f(0))|, and the error of the map of each input's second-order Taylor polynomial's independent part and interactive part against the ideal assignment (relative to the ideal's L1 size); baseline 0, f = explain.output"
        (Fields.field id (Param.int "inputs" "explained inputs assessed (the first ones); each costs d Hessian-vector products" (Some 10) 1 (Some Bounds.References)))
        TaylorFidelity
        (function
        | TaylorFidelity n -> Some n
        | _ -> None)

// Revision 2: the result keeps each input's values (Results.PerInput) for `attribution export`.
let entry = MetricEntry.shipped variant { MetricFacts.everywhere with Better = [ "approximation_error", false; "independent_error_relative", false; "interactive_error_relative", false ] } |> MetricEntry.revised 2
