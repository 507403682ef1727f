/// The two-word experiment (Functional Information, Fig. 2): utterances of "right" then "cat" joined into 2 s clips;
/// how much of each word's class attribution falls on its own half.
module Experiments.MetricRuns.TwoWord

open Attribution.Metrics
open Experiments
open Experiments.MetricRuns.MetricRun

/// The shares over `pairs` joined utterances of held-out speakers.
let evaluate (run: MetricRun) (pairs: int) =
    let _, test = run.Domain.Speech |> Option.defaultWith (fun () -> failwith "two_word needs data.dataset speech_commands")
    let right, cat = test.ClassOf "right", test.ClassOf "cat"
    use utterances = TwoWordAttribution.Pairs(test, right, cat, pairs, run.Seed)
    let n, length = utterances.shape.[0], utterances.shape.[2]
    // The 2 s utterances seen as frames, like every audio input; class covariances re-wrapped for twice the frames.
    let frames = AudioDomain.framesOf length
    let longModel = new Attribution.Models.ReshapedModel(run.Network, [| 1L; length |], frames)
    let longContext =
        { run.Context with
            Structured = fun _ _ -> failwith "two_word takes covariance_gaussian with structure shared_across_channels only"
            Model = longModel
            Covariances =
                run.Context.Covariances |> Seq.map (fun kv -> kv.Key, Attribution.Sampling.ClassCovariance.FromCovariances(kv.Value.Covariances, frames.[0], 1L, frames.[2], 0.0)) |> dict }
    // The frames view every audio method explains; its elements in order are the utterance's samples.
    let x = utterances.reshape(Array.append [| n |] frames)
    use shares = TwoWordAttribution.Explain(longModel, Running.methodOf run.Kind longContext, x.``to``(run.Device), length / 2L, int64 right, int64 cat, run.ExplainOptions)
    let rightShare, catShare = shares.FirstOnFirstWord, shares.SecondOnSecondWord
    let bothTop2 = TwoWordAttribution.BothInTopTwo(longModel, x, int64 right, int64 cat, run.Device) |> Array.filter id |> Array.length
    result run [| value "right_share_on_first_word" (Array.average rightShare); value "cat_share_on_second_word" (Array.average catShare)
                  value "min_right_share" (Array.min rightShare); value "min_cat_share" (Array.min catShare)
                  value "pairs" (float n); value "pairs_with_both_words_in_top2" (float bothTop2) |] "" [||] [||]
    |> withIntervals run [ "right_share_on_first_word", rightShare; "cat_share_on_second_word", catShare ]
