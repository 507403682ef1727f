/// The `roar` metric: its parameters (with defaults and ranges) and facts; the engine computes it (Attribution.Metrics.Roar), MetricRuns/Roar.fs runs it.
module Experiments.MetricEntries.Roar

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.make
        "roar"
        "Hooker et al. 2019 (RemOve And Retrain): replace the most important fraction of pixels of training and explained test inputs by the training mean, retrain from scratch per fraction, test accuracy (and a random ranking for reference); reduced scale"
        (fields {
            let! fractions =
                Fields.field (fun (r: RoarSpec) -> r.Fractions)
                    (Param.list "fractions" "fractions of the most important pixels removed" (Some [ 0.1; 0.3; 0.5; 0.7; 0.9 ]) Params.unitFraction "strictly increasing, in (0, 1)" Params.increasing)
            and! trainInputs = Fields.field (fun (r: RoarSpec) -> r.TrainInputs) (Param.int "train_inputs" "training inputs explained and retrained on (a seeded subset)" (Some 2000) 10 (Some 100_000))
            and! epochs = Fields.field (fun (r: RoarSpec) -> r.Epochs) (Param.int "epochs" "training epochs of each retrained model" (Some 4) 1 (Some Bounds.Epochs))
            return { Fractions = fractions; TrainInputs = trainInputs; Epochs = epochs }
        })
        Roar
        (function
        | Roar s -> Some s
        | _ -> None)

// Revision 2: per-test-input values, intervals and removed_minus_random; ties broken by the ranking the other
// perturbation metrics share (FeatureRanking), where ROAR had its own order for tied pixels.
let entry = MetricEntry.shipped variant { Modalities = [ Modality.Image ]; Datasets = []; NeedsBoxes = false; Better = [ "mean_accuracy_removed", false; "removed_minus_random", false ] } |> MetricEntry.revised 2
