/// The `two_word` metric: its parameters (with defaults and ranges) and facts; the engine computes it (Attribution.Metrics.TwoWordAttribution), MetricRuns/TwoWord.fs runs it.
module Experiments.MetricEntries.TwoWord

open Experiments
open Experiments.Vocabulary

let variant: Variant<MetricSpec> =
    Variant.make
        "two_word"
        "Gat et al. 2022, Fig. 2 (audio): an utterance of 'right' followed by one of 'cat' (test clips, 2 s), both classes explained; share of sum |map| on each class's own word (1 = all of it, 0.5 = none preferred)"
        (Fields.field id (Param.int "pairs" "'right' + 'cat' utterances built from test clips" (Some 20) 1 (Some 1000)))
        TwoWord
        (function
        | TwoWord n -> Some n
        | _ -> None)

let entry = MetricEntry.shipped variant { Modalities = [ Modality.Audio ]; Datasets = [ SpeechCommands ]; NeedsBoxes = false; Better = [ "right_share_on_first_word", true; "cat_share_on_second_word", true ] }
