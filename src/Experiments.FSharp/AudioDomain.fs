/// Audio as the runner sees it: waveforms [N, 1, L] seen as frames [N, L/w, 1, w] (one w x w class covariance shared
/// by every frame; a full L x L one is 1 GB a class at 16 kHz); masking sets samples to the mask value (0).
module Experiments.AudioDomain

open System.IO
open TorchSharp
open Attribution.Models
open Attribution.Runtime
open Attribution.Sampling
open Experiments
open Experiments.Domain

/// Samples per frame of the audio view (25 ms at 16 kHz): the class covariance is frame x frame.
let audioFrame = 400L

/// The synthesised corpus: its settings, seeded by the spec.
let speechOptions (spec: Spec) =
    Attribution.Data.Audio.SpeechSynthesisOptions(UtterancesPerWord = defaultArg spec.Data.UtterancesPerWord 100, Seed = Seeds.Derive(int64 spec.Seed, "speech"))

let clipOptions (spec: Spec) = Attribution.Data.Audio.ClipOptions(Seed = Seeds.Derive(int64 spec.Seed, "clips"))

/// Where synthesised utterances are cached (synthesis is the slow part).
let private speechCache () = Path.Combine(Artefacts.root (), "audio-speech")

/// The view of waveforms [N, 1, L] as frames [N, L/w, 1, w].
let framesOf (length: int64) = [| length / audioFrame; 1L; audioFrame |]

let load (spec: Spec) =
    let struct (train: Attribution.Data.Audio.AudioDataset, test: Attribution.Data.Audio.AudioDataset) =
        Attribution.Data.Audio.SpeechCommandsSynth.Load(speechCache (), speechOptions spec, clipOptions spec,
                                                        progress = Progress(fun d t m -> Progress.report "synthesise speech" d t m))
    let train =
        match spec.Data.TrainLimit with
        | Some n when n < train.Count ->
            use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "audio-train-limit")), torch.CPU)
            use order = torch.randperm(int64 train.Count, generator = g)
            train.Select(order.narrow(0L, 0L, int64 n).data<int64>().ToArray())
        | _ -> train
    let length = train.Length
    if length % audioFrame <> 0L then invalidArg "spec" $"clips of {length} samples do not split into frames of {audioFrame}"
    let frames = framesOf length
    let asFrames (waveforms: Tensor) = waveforms.reshape(Array.append [| waveforms.shape.[0] |] frames)
    let select (data: Attribution.Data.Audio.AudioDataset) (rows: int64[]) = use index = torch.tensor(rows) in data.Waveforms.index_select(0L, index)
    let explained (model: Network) = new ReshapedModel(model, [| 1L; length |], frames) :> Network
    { Modality = Modality.Audio
      ClassNames = List.ofSeq test.ClassNames
      TrainCount = train.Count
      TestCount = test.Count
      TrainLabels = train.Labels
      TestLabels = test.Labels
      Boxes = None
      NewModel =
        fun () ->
            match spec.Model.Architecture with
            | M5 -> new Attribution.Models.M5(Attribution.Models.M5.Shape(Classes = test.ClassNames.Count)) :> Network
            | other -> invalidArg "architecture" $"{Hashing.display other} is not an audio model"
      Train = fun model options device progress -> Training.Train(model, train.Waveforms, train.Labels, (fun x -> model.forward x), options, device, progress)
      Accuracy =
        fun model device ->
            use scope = torch.NewDisposeScope()
            Training.Logits(model, test.Waveforms, device).argmax(1L).eq(test.Labels).``to``(torch.ScalarType.Float64).mean().item<float>()
      Explained = explained
      Inputs = fun _ isTrain rows -> asFrames (select (if isTrain then train else test) rows)
      Covariance = fun _ jitter device -> ClassCovariance.Estimate(asFrames train.Waveforms, train.Labels, train.ClassNames.Count, jitter, device)
      MaskedPredictions =
        fun model rows maps fractions maskValue tieBreak device ->
            use inputs = asFrames (select test rows)
            Attribution.Metrics.NegativePerturbation(Array.ofList fractions, maskValue).MaskedPredictions(explained model, inputs, maps, tieBreak, device)
      // every sample of a clip
      MaskedSlots = frames |> Array.fold (*) 1L
      View = fun rows -> AudioView(select test rows, test.SampleRate)
      Speech = Some(train, test) }
