/// What an export derives again from the data and the model (both deterministic on the CPU): the explained inputs as
/// the methods saw them, their labels, the model's logits, the run's predictions and targets, the inputs' regions where
/// the data has them, and the class covariances the covariance samplers drew from (the shared ones from the run's
/// covariance steps in the cache, re-estimated if the cache lost them).
module Experiments.ExportInputs

open System
open System.Collections.Generic
open System.Globalization
open System.IO
open System.Text
open TorchSharp
open Attribution.Data
open Attribution.Models
open Attribution.Sampling
open Experiments
open Experiments.ExportManifest

type Tensor = torch.Tensor
type Network = torch.nn.Module<Tensor, Tensor>

let private fail (message: string) = raise (InputProblem message)

/// A class's name by its index: a model may have more outputs than the data has named classes.
let private classNameOf (names: string list) (index: int64) =
    if index >= 0L && index < int64 names.Length then names.[int index] else $"output {index}"

let private csvField (s: string) = if s.IndexOfAny([| ','; '"'; '\n'; '\r' |]) >= 0 then "\"" + s.Replace("\"", "\"\"") + "\"" else s

/// How the explained inputs are laid out for the methods, per modality (one sentence).
let private inputsSentence (modality: Modality) =
    match modality with
    | Modality.Image -> "The explained inputs as the methods saw them, [N, C, H, W] float32 (the data's pixels, before any model normalisation, which is part of the model)."
    | Modality.Tabular -> "The explained inputs as the methods saw them, [N, 1, 1, F] float32 (a row of F features held as a one-row image)."
    | Modality.Audio -> "The explained waveforms as the methods saw them, [N, frames, 1, samples per frame] float32 (the waveform cut into frames)."
    | Modality.Text -> "The explained texts as the methods saw them, [N, T, 1, E] float32: the model's embedding of each of T token positions (padding included)."

/// Writes inputs.safetensors and inputs.csv; returns their entries and the targets per target kind.
let write (dir: string) (run: ExportSource.FinishedRun) (domain: Domain.Domain) (network: Network) : FileEntry list =
    use scope = torch.NewDisposeScope()
    let spec = run.Plan.Spec
    let indices = run.Inputs |> Array.map _.TestIndex
    let predictions = run.Inputs |> Array.map _.Prediction
    let specFile = Path.Combine(run.Folder, "spec.yaml")
    let rerun = $"re-run its spec (`attribution run {specFile}`) and export again"
    if indices <> Execute.explainedIndices spec domain.TestCount then
        fail $"{Path.Combine(run.Folder, InputRecord.FileName)} lists other test inputs than the spec explains: {rerun}"
    let labels = domain.TestLabels.index_select(0L, torch.tensor(indices)).data<int64>().ToArray()
    match Array.zip labels (run.Inputs |> Array.map _.Label) |> Array.tryFindIndex (fun (a, b) -> a <> b) with
    | Some i -> fail $"{Path.Combine(run.Folder, InputRecord.FileName)}: the label of test input {indices.[i]} is {run.Inputs.[i].Label}, the data's is {labels.[i]}: {rerun}"
    | None -> ()
    // read and written a block at a time, as a run reads them: the inputs are never whole in memory
    let inputs = InputRows.ofDomain domain network false indices
    let logits = (InputRows.logits (domain.Explained network) inputs torch.CPU).``to``(torch.ScalarType.Float32)
    let argmax = logits.argmax(1L).data<int64>().ToArray()
    let agree = Array.zip argmax predictions |> Array.filter (fun (a, b) -> a = b) |> Array.length
    if agree < predictions.Length then
        Progress.say $"export: the model's predictions on the CPU differ from the run's ({run.Device}) for {predictions.Length - agree} of {predictions.Length} inputs (near ties); the run's are exported"
    let n = int64 indices.Length
    let tensors = Dictionary<string, Tensor>()
    let entries = List<TensorEntry>()
    let add (name: string) (t: Tensor) (description: string) =
        tensors.[name] <- t
        entries.Add(tensor name t description)
    let addInputs (description: string) = entries.Add(tensorOfShape "inputs" torch.ScalarType.Float32 inputs.Shape description)
    add "test_index" (torch.tensor(indices)) "The input's index in the dataset's test set (row i of every per-input tensor of this export belongs to test_index[i]); the run's seeded subset."
    add "label" (torch.tensor(labels)) "The input's label (class index, see manifest.json classes)."
    add "prediction" (torch.tensor(predictions)) $"The model's predicted class, argmax of its output, as the run computed it on {run.Device} (inputs.csv of the run folder)."
    add "logits" logits $"The model's outputs (logits) on the inputs, recomputed by the export on the CPU; their argmax equals `prediction` for {agree} of {n} inputs."
    for target in spec.Explain.Targets do
        match target with
        | GroundTruth -> add "target_ground_truth" (torch.tensor(labels)) "The class the ground_truth maps explain: the label."
        | Predicted -> add "target_predicted" (torch.tensor(predictions)) "The class the predicted maps explain: the run's prediction."
    addInputs (inputsSentence domain.Modality)
    match domain.View indices with
    | Domain.TextView(tokens, lengths, _) ->
        add "tokens" (tokens.``to``(torch.ScalarType.Int64).contiguous()) "The token ids of each text [N, T], padded with 0 after its real length; the maps' position t is token t."
        add "lengths" (lengths.``to``(torch.ScalarType.Int64).contiguous()) "The real length (tokens) of each text."
    | Domain.AudioView(waveforms, _) ->
        add "waveforms" (waveforms.``to``(torch.ScalarType.Float32).contiguous()) "The explained waveforms [N, 1, L], samples in [-1, 1] (inputs is the same, cut into frames)."
    | Domain.ImageView | Domain.TabularView _ -> ()
    match domain.Boxes with
    | Some regions when inputs.Shape.Length = 4 ->
        let explained = indices |> Array.map (fun i -> regions.[int i])
        let h, w = int inputs.Shape.[2], int inputs.Shape.[3]
        let inside = [| for r in explained do for y in 0 .. h - 1 do for x in 0 .. w - 1 -> if r.Contains(y, x) then 1uy else 0uy |]
        add "regions" (torch.tensor(inside).reshape(n, int64 h, int64 w)) "The ground-truth region of each input as a mask [N, H, W] (1 inside), from the data's boxes or masks."
        let boxes = explained |> Array.choose (function :? Box as b -> Some b | _ -> None)
        if boxes.Length = explained.Length then
            add "boxes" (torch.tensor([| for b in boxes do yield! [| int64 b.Top; int64 b.Left; int64 b.Height; int64 b.Width |] |]).reshape(n, 4L))
                "The ground-truth box of each input: top, left, height, width in pixels (rows top .. top + height - 1)."
    | _ -> ()
    do
        let declared = [ for e in entries -> struct (e.Name, (if e.Name = "inputs" then torch.ScalarType.Float32 else tensors.[e.Name].dtype), e.Shape) ]
        use writer = new SafetensorsRowWriter(Path.Combine(dir, "inputs.safetensors"), declared, readOnlyDict [ "classes", String.Join("\n", domain.ClassNames) ])
        for KeyValue(name, t) in tensors do writer.Write(name, 0L, t)
        for first, count in InputRows.blocks inputs.Count 1024 do
            use block = inputs.Block(first, count)
            use asFloat = block.``to``(torch.ScalarType.Float32).contiguous()
            writer.Write("inputs", int64 first, asFloat)
        writer.Commit()
    let csv = StringBuilder()
    let targets = spec.Explain.Targets |> List.map (function GroundTruth -> "target_ground_truth" | Predicted -> "target_predicted")
    csv.Append("position,test_index,label,label_name,prediction,prediction_name" + (targets |> List.map ((+) ",") |> String.concat "") + "\n") |> ignore
    for i in 0 .. indices.Length - 1 do
        let targetValues = spec.Explain.Targets |> List.map (function GroundTruth -> $",{labels.[i]}" | Predicted -> $",{predictions.[i]}") |> String.concat ""
        csv.Append($"{i},{indices.[i]},{labels.[i]},{csvField (classNameOf domain.ClassNames labels.[i])},{predictions.[i]},{csvField (classNameOf domain.ClassNames predictions.[i])}{targetValues}\n") |> ignore
    Attribution.IO.AtomicFile.WriteAllText(Path.Combine(dir, "inputs.csv"), csv.ToString())
    let features = match domain.View indices with Domain.TabularView names -> [ "features", Texts names ] | _ -> []
    [ { file "inputs.safetensors" "safetensors" "The explained inputs, their labels, the model's outputs, the run's predictions and the classes each map explains, one row per explained input; metadata `classes` holds the class names, one a line." with
          Tensors = List.ofSeq entries; Facts = [ "classes", Texts domain.ClassNames ] @ features }
      { file "inputs.csv" "csv" "The same per-input facts as a table, with class names." with
          Columns =
            [ "position", "The input's row in every per-input tensor."
              "test_index", "The input's index in the dataset's test set."
              "label", "The label (class index)."
              "label_name", "The label's class name."
              "prediction", "The run's predicted class."
              "prediction_name", "Its class name." ]
            @ (targets |> List.map (fun t -> t, $"The class the {t.Substring 7} maps explain.")) } ]

let private invariant (x: float) = x.ToString("R", CultureInfo.InvariantCulture)

/// What one covariance of a class is estimated from, per modality.
let private samplesSentence (modality: Modality) =
    match modality with
    | Modality.Text -> "the embedding vectors of real tokens (padding left out) of the training texts of class k, a seeded subset of at most 200,000 per class, each one sample of an E-vector shared by every position"
    | Modality.Audio -> "the frames of the training waveforms of class k, each frame one sample"
    | Modality.Image | Modality.Tabular -> "the training inputs of class k, every channel of every input one sample of an H*W-vector"

let private jitterSentence = "j_k starts at relative_jitter times the mean diagonal and is multiplied by 10 until the Cholesky factorisation succeeds"

/// Writes one file per class covariance the spec's samplers use; returns their entries.
let writeCovariances (dir: string) (run: ExportSource.FinishedRun) (domain: Domain.Domain) (network: Network) : FileEntry list =
    let spec = run.Plan.Spec
    let facts (structure: string) (jitter: float) (methods: string list) (shape: int64[]) =
        [ "structure", Text structure; "relative_jitter", Number jitter; "methods", Texts methods
          "channels", Integer shape.[0]; "height", Integer shape.[1]; "width", Integer shape.[2]
          "classes", Integer(int64 domain.ClassNames.Length); "training_inputs", Integer(int64 domain.TrainCount)
          "where", Text "the run's cached covariance step (estimated again with the run's estimator and data if the cache lost it)" ]
    let shared =
        spec.Methods |> List.choose (fun m -> Plan.covarianceJitter m.Kind |> Option.map (fun j -> j, m.Id)) |> List.groupBy fst
        |> List.map (fun (jitter, ms) ->
            use scope = torch.NewDisposeScope()
            let step = run.Plan.Steps |> List.find (fun s -> s.Kind = Plan.EstimateCovariance jitter)
            use c = CovarianceSteps.provide step torch.CPU (fun () -> domain.Covariance network jitter torch.CPU)
            let path = $"covariance/shared_across_channels-jitter={invariant jitter}.safetensors"
            let tensors =
                [ "covariance", c.Covariances, $"Sigma_k + j_k I for each class k, [K, D, D] with D = H*W: Sigma_k is the unbiased covariance of {samplesSentence domain.Modality}; {jitterSentence}. The samplers draw from scale times this matrix, the same for every channel."
                  "factor", c.Factors, "The lower Cholesky factor L_k of each class's covariance (L_k L_k^T = covariance), float32, as the samplers use it."
                  "jitter", torch.tensor(Array.ofSeq c.Jitters), "The jitter j_k added to each class's diagonal (absolute)."
                  "count", torch.tensor(c.Counts |> Seq.map int64 |> Array.ofSeq), "The number of training inputs (for text: token vectors) of each class the estimate used." ]
            Safetensors.Save(Path.Combine(dir, path), readOnlyDict [ for n, t, _ in tensors -> n, t ], readOnlyDict [ "structure", "shared_across_channels"; "relative_jitter", invariant jitter ])
            { file path "safetensors" $"""The class covariances (shared across channels, relative jitter {invariant jitter}) of the covariance samplers of {String.concat ", " (ms |> List.map snd)}.""" with
                Tensors = [ for n, t, d in tensors -> tensor n t d ]
                Facts = facts "shared_across_channels" jitter (ms |> List.map snd) [| c.Channels; c.Height; c.Width |] })
    let structured =
        spec.Methods
        |> List.choose (fun m -> Plan.structuredCovariance m.Kind |> Option.map (fun s -> s, m.Id))
        |> List.groupBy fst
        |> List.map (fun ((jitter, layout, rank), ms) ->
            use scope = torch.NewDisposeScope()
            let structure = CovarianceSteps.structureOf layout rank
            let estimate () =
                let images = domain.Inputs network true (Array.init domain.TrainCount int64)
                CovarianceModels.Estimate(images, domain.TrainLabels, domain.ClassNames.Length, structure, jitter, torch.CPU)
            let step = run.Plan.Steps |> List.find (fun s -> s.Kind = Plan.EstimateStructuredCovariance(jitter, layout, rank))
            use model = CovarianceSteps.provideStructured step torch.CPU estimate
            let counts = domain.TrainLabels.bincount(null, minlength = int64 domain.ClassNames.Length).``to``(torch.ScalarType.Int64)
            let path = $"covariance/{structure.Name}-jitter={invariant jitter}.safetensors"
            let sample = $"Sigma_k is the unbiased covariance of the C*H*W features of the training inputs of class k"
            let parts =
                match model with
                | :? LowRankPlusDiagonalCovariance as l ->
                    [ "u", torch.stack([| for k in 0L .. l.Classes - 1L -> l.Factor k |]), $"U_k [K, D, r] of Sigma_k ~ U_k U_k^T + diag(d_k): the top r = {l.Rank} principal directions of Sigma_k scaled by the square roots of their variances; {sample}."
                      "diagonal", torch.stack([| for k in 0L .. l.Classes - 1L -> l.Diagonal k |]), "d_k [K, D]: diag(Sigma_k) - diag(U_k U_k^T), kept at least the jitter floor j_k (relative_jitter times the mean diagonal), so every feature keeps its own variance." ]
                | :? DenseBlockCovariance as d ->
                    let blocks = if structure :? CovarianceStructure.PerChannel then "one block per channel, [K, C, H*W, H*W]" else "one block of all D = C*H*W features, [K, 1, D, D]"
                    [ "factor", d.Factors, $"Lower Cholesky factors L of the blocks of Sigma_k + j_k I ({blocks}); {sample}; {jitterSentence} (per channel: j_k is the largest over the channels). Sigma_k + j_k I = L L^T block by block." ]
                | other -> failwith $"no export for covariance model {other.GetType().Name}"
            let tensors = parts @ [ "jitter", torch.tensor(Array.ofSeq model.Jitters), "The jitter j_k of each class (absolute)."
                                    "count", counts, "The number of training inputs of each class the estimate used." ]
            Safetensors.Save(Path.Combine(dir, path), readOnlyDict [ for n, t, _ in tensors -> n, t ], readOnlyDict [ "structure", structure.Name; "relative_jitter", invariant jitter ])
            { file path "safetensors" $"""The class covariances ({structure.Name}, relative jitter {invariant jitter}) of the covariance samplers of {String.concat ", " (ms |> List.map snd)}.""" with
                Tensors = [ for n, t, d in tensors -> tensor n t d ]
                Facts = facts structure.Name jitter (ms |> List.map snd) [| model.Channels; model.Height; model.Width |] })
    shared @ structured
