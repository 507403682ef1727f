/// Insertion/deletion on one method's maps: on images the NeFLAG protocol's two rounds (black, then blurred substrate)
/// and their average; on texts (tokens set to <unk>) and clips (25 ms frames set to silence) one round. The maps are
/// read a block of inputs at a time; one tie-breaking generator runs through the blocks as through the whole set.
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

let private text (run: MetricRun) =
    let model, tokens, lengths = textOf run
    let metric, batch = TokenInsertionDeletion(), run.Plan.Spec.Explain.BatchSize
    use tieBreak = new torch.Generator(uint64 run.Seed, torch.CPU)
    let r =
        InsertionDeletionScores.Concatenate
            (run.Stored.MapBlocks(alignedBlock [ metric.InputsPerChunk batch ] 1024, fun first n maps ->
                let t, l, scores = tokenBlock tokens lengths first n maps
                metric.Evaluate(model, t, l, scores, targetsOf run first n, tieBreak, run.Device, batch)))
    oneRound run r "fraction of the input's tokens changed to <unk> (most important first)"

let private audio (run: MetricRun) =
    // One frame a step, set to silence: one round (a blur of a waveform is not a neutral substrate).
    let schedule, batch = StepSchedule.FeaturesPerStep 1L, 1024
    use tieBreak = new torch.Generator(uint64 run.Seed, torch.CPU)
    let r =
        InsertionDeletionScores.Concatenate
            (run.Stored.MapBlocks(alignedBlock [ Attribution.Metrics.InsertionDeletion.InputsPerChunk(schedule, run.Inputs.shape.[1], batch) ] 1024, fun first n maps ->
                Attribution.Metrics.InsertionDeletion.Play(frameSpace run first n, maps, targetsOf run first n, schedule, tieBreak, batch)))
    oneRound run r "fraction of the clip's 25 ms frames set to silence (most important first)"

let private image (run: MetricRun) (pixels: int) (sigma: float) =
    let metric = Attribution.Metrics.InsertionDeletion(Nullable pixels)
    let block = alignedBlock [ metric.InputsPerChunk(run.Inputs.shape.[2], run.Inputs.shape.[3]) ] 1024
    // The two rounds, each with its own tie-breaking generator through the blocks.
    let round (substrate: Substrate) =
        use tieBreak = new torch.Generator(uint64 run.Seed, torch.CPU)
        InsertionDeletionScores.Concatenate
            (run.Stored.MapBlocks(block, fun first n maps ->
                metric.Evaluate(run.Model, inputsOf run first n, maps, targetsOf run first n, substrate, tieBreak, run.Device)))
    let averaged = AveragedInsertionDeletion [| round (Substrate.Black() :> Substrate); round (Substrate.Blurred sigma) |]
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
    match run.Domain.Modality with
    | Modality.Text -> text run
    | Modality.Audio -> audio run
    | _ -> image run pixels sigma
