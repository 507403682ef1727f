/// Insertion/deletion on one method's maps: on images the NeFLAG protocol's two rounds (black, then blurred substrate)
/// and their average; on texts (tokens set to <unk>) and clips (25 ms frames set to silence) one round. Each round is a
/// pass over blocks of inputs (MetricBlocks: stored as parts, shared out by shards); one tie-breaking generator runs
/// through a round's blocks as through the whole set.
module Experiments.MetricRuns.InsertionDeletion

open System
open TorchSharp
open Attribution.Metrics
open Experiments
open Experiments.Results
open Experiments.MetricRuns.MetricRun

/// One round (text, audio: one substrate) as the report holds it.
let private oneRound (run: MetricRun) (r: InsertionDeletionScores) (xLabel: string) =
    let difference = Array.map2 (-) r.Insertion.Auc r.Deletion.Auc
    result run [| value "deletion" r.Deletion.MeanAuc; value "insertion" r.Insertion.MeanAuc; value "difference" r.Difference |]
           xLabel r.Deletion.Fractions
           [| { Name = "deletion"; Values = meanCurve r.Deletion.Curves; Auc = r.Deletion.MeanAuc }
              { Name = "insertion"; Values = meanCurve r.Insertion.Curves; Auc = r.Insertion.MeanAuc } |]
    |> withIntervals run [ "deletion", r.Deletion.Auc; "insertion", r.Insertion.Auc; "difference", difference ]
    |> withPerInput [ PerInputs.ofScalar "deletion" r.Deletion.Auc; PerInputs.ofScalar "insertion" r.Insertion.Auc
                      PerInputs.ofScalar "difference" difference ]

/// A block's two games as its part in the cache holds them.
type GamesPart =
    { Substrate: string; Fractions: float[]; DeletionCurves: float[][]; DeletionAuc: float[]; InsertionCurves: float[][]; InsertionAuc: float[] }

let private codec =
    MetricBlocks.json
        (fun (r: InsertionDeletionScores) ->
            { Substrate = r.Substrate; Fractions = r.Deletion.Fractions; DeletionCurves = r.Deletion.Curves; DeletionAuc = r.Deletion.Auc
              InsertionCurves = r.Insertion.Curves; InsertionAuc = r.Insertion.Auc })
        (fun p -> InsertionDeletionScores(p.Substrate, GameCurves(p.Fractions, p.DeletionCurves, p.DeletionAuc), GameCurves(p.Fractions, p.InsertionCurves, p.InsertionAuc)))

/// A pass of `size` inputs a block whose ties are broken by `slots` draws an input.
let private pass (name: string) (size: int) (slots: int64) compute : MetricBlocks.Pass<InsertionDeletionScores> =
    { Name = name; Size = size; Inputs = None; TieBreakSlots = slots; ReadsMaps = true; Compute = compute; Write = fst codec; Read = snd codec }

/// Texts: one round, tokens set to <unk> (a slot per token position).
let private textPass (run: MetricRun) =
    let model, tokens, lengths = textOf run
    let metric, batch = TokenInsertionDeletion(), run.Plan.Spec.Explain.BatchSize
    pass "unk" (alignedBlock [ metric.InputsPerChunk batch ] 1024) tokens.shape.[1] (fun first n maps tieBreak ->
        let t, l, scores = tokenBlock tokens lengths first n maps
        metric.Evaluate(model, t, l, scores, targetsOf run first n, tieBreak, run.Device, batch))

/// Clips: one round, one 25 ms frame a step set to silence (a blur of a waveform is not a neutral substrate).
let private audioPass (run: MetricRun) =
    let schedule, batch = StepSchedule.FeaturesPerStep 1L, 1024
    pass "silence" (alignedBlock [ Attribution.Metrics.InsertionDeletion.InputsPerChunk(schedule, run.Inputs.Shape.[1], batch) ] 1024) run.Inputs.Shape.[1]
        (fun first n maps tieBreak ->
            use clips = inputsOf run first n
            Attribution.Metrics.InsertionDeletion.Play(frameSpace run clips, maps, targetsOf run first n, schedule, tieBreak, batch))

/// Images: a round on one substrate, each with its own tie-breaking generator (a slot per pixel).
let private imagePass (run: MetricRun) (pixels: int) (name: string) (substrate: Substrate) =
    let metric = Attribution.Metrics.InsertionDeletion(Nullable pixels)
    let height, width = run.Inputs.Shape.[2], run.Inputs.Shape.[3]
    pass name (alignedBlock [ metric.InputsPerChunk(height, width) ] 1024) (height * width) (fun first n maps tieBreak ->
        use images = inputsOf run first n
        metric.Evaluate(run.Model, images, maps, targetsOf run first n, substrate, tieBreak, run.Device))

/// The passes of the run's modality (images: the black round, then the blurred one).
let private passes (run: MetricRun) (pixels: int) (sigma: float) =
    match run.Domain.Modality with
    | Modality.Text -> [ textPass run ]
    | Modality.Audio -> [ audioPass run ]
    | _ -> [ imagePass run pixels "black" (Substrate.Black()); imagePass run pixels "blurred" (Substrate.Blurred sigma) ]

/// The passes as a shard shares their blocks out.
let shared (run: MetricRun) (pixels: int) (sigma: float) = passes run pixels sigma |> List.map (MetricBlocks.shared run)

let private image (run: MetricRun) (rounds: InsertionDeletionScores list) =
    let averaged = AveragedInsertionDeletion(Array.ofList rounds)
    let rounds = averaged.Rounds |> Seq.toArray
    let fractions = rounds.[0].Deletion.Fractions
    let scalars =
        [| for r in rounds do
             yield value $"deletion_{r.Substrate}" r.Deletion.MeanAuc
             yield value $"insertion_{r.Substrate}" r.Insertion.MeanAuc
             yield value $"difference_{r.Substrate}" r.Difference
           yield value "deletion" averaged.Deletion
           yield value "insertion" averaged.Insertion
           yield value "difference" averaged.Difference |]
    let curves =
        [| for r in rounds do
             yield { Name = $"deletion_{r.Substrate}"; Values = meanCurve r.Deletion.Curves; Auc = r.Deletion.MeanAuc }
             yield { Name = $"insertion_{r.Substrate}"; Values = meanCurve r.Insertion.Curves; Auc = r.Insertion.MeanAuc } |]
    let perRound (pick: InsertionDeletionScores -> float[]) = rounds |> Array.map pick
    let averageOver (rows: float[][]) = Array.init rows.[0].Length (fun i -> rows |> Array.averageBy (fun row -> row.[i]))
    let deletions, insertions = perRound (fun r -> r.Deletion.Auc), perRound (fun r -> r.Insertion.Auc)
    let perInput =
        [ for r, d, i in Array.zip3 rounds deletions insertions do
            yield $"deletion_{r.Substrate}", d
            yield $"insertion_{r.Substrate}", i
            yield $"difference_{r.Substrate}", Array.map2 (-) i d
          yield "deletion", averageOver deletions
          yield "insertion", averageOver insertions
          yield "difference", Array.map2 (-) (averageOver insertions) (averageOver deletions) ]
    result run scalars "fraction of pixels changed (most important first)" fractions curves
    |> withIntervals run perInput
    |> withPerInput (perInput |> List.map (fun (n, values) -> PerInputs.ofScalar n values))

/// Insertion/deletion in the modality of the run's data (`pixels` and `sigma` are the image protocol's).
let evaluate (run: MetricRun) (pixels: int) (sigma: float) =
    let rounds = passes run pixels sigma |> List.map (MetricBlocks.all run >> InsertionDeletionScores.Concatenate)
    match run.Domain.Modality, rounds with
    | Modality.Text, [ r ] -> oneRound run r "fraction of the input's tokens changed to <unk> (most important first)"
    | Modality.Audio, [ r ] -> oneRound run r "fraction of the clip's 25 ms frames set to silence (most important first)"
    | _ -> image run rounds
