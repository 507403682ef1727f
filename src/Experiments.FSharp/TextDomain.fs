/// Text as the runner sees it: the embeddings [N, T, E] of the trained model seen as [N, T, 1, E] (one E x E class
/// covariance shared by every position, Functional Information, App. B); masking a word replaces it with <unk> and a
/// word's score is the sum of its embedding coordinates' scores (footnote 2).
module Experiments.TextDomain

open TorchSharp
open Attribution.Data
open Attribution.Methods
open Attribution.Metrics
open Attribution.Models
open Attribution.Runtime
open Attribution.Sampling
open Experiments
open Experiments.Domain

/// Sequence length, vocabulary and split of the text corpus: the first 128 tokens of an e-mail (its subject and
/// opening: a recurrent model over 256 steps trains too slowly on 2 cores), vocabulary of at most 20,000 words
/// seen twice, the split seeded by the spec.
let textOptions (spec: Spec) = TextDataOptions(MaxLength = 128, Seed = Seeds.Derive(int64 spec.Seed, "text-split"))

/// Width of the word embeddings of every text model (one value, so the four architectures compare).
let textEmbedding = 32

let private textModel (architecture: Architecture) (vocabulary: int) : TextModel =
    match architecture with
    | TextLstm -> new Attribution.Models.TextLstm(Attribution.Models.TextLstm.Shape(vocabulary, EmbeddingSize = textEmbedding))
    | TextBiLstm -> new Attribution.Models.TextBiLstm(Attribution.Models.TextBiLstm.Shape(vocabulary, EmbeddingSize = textEmbedding))
    | TextCnn -> new Attribution.Models.TextCnn(Attribution.Models.TextCnn.Shape(vocabulary, EmbeddingSize = textEmbedding))
    | TextTransformer -> new Attribution.Models.TextTransformer(Attribution.Models.TextTransformer.Shape(vocabulary, EmbeddingSize = textEmbedding))
    | other -> invalidArg "architecture" $"{Hashing.display other} is not a text model"

/// Tokens embedded per chunk when embedding a whole split (bounds memory).
let private embedChunk = 256

/// Embeddings [n, T, E] (CPU) of token rows, in chunks, without gradients.
let private embed (model: TextModel) (tokens: Tensor) =
    let device = deviceOf model
    use _ = torch.no_grad()
    let parts =
        [| for start in 0L .. int64 embedChunk .. tokens.shape.[0] - 1L do
             use scope = torch.NewDisposeScope()
             let n = min (int64 embedChunk) (tokens.shape.[0] - start)
             yield model.Embed(tokens.narrow(0L, start, n).``to``(device)).cpu().MoveToOuterDisposeScope() |]
    let all = torch.cat(parts, 0L)
    for p in parts do p.Dispose()
    all

/// At most this many real tokens per class enter the embedding covariance (a seeded subset): E x E needs far fewer.
let private covarianceTokens = 200_000L

let load (spec: Spec) =
    let split =
        match spec.Data.Dataset with
        | TextFile path -> Attribution.Data.TextFile.LoadSplit(path, textOptions spec)
        | _ -> SpamAssassin.LoadSplit(Option.toObj spec.Data.Root, textOptions spec)
    // The split is stored class by class, so a limit takes a seeded random subset, not the first (all-ham) rows.
    let train =
        match spec.Data.TrainLimit with
        | Some n when n < split.Train.Count ->
            use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "text-train-limit")), torch.CPU)
            use order = torch.randperm(int64 split.Train.Count, generator = g)
            split.Train.Select(order.narrow(0L, 0L, int64 n).data<int64>().ToArray())
        | _ -> split.Train
    let test = split.Test
    let length = int64 test.MaxLength
    let asText (model: Network) =
        match model with
        | :? TextModel as t -> t
        | other -> invalidArg "model" $"{other.GetType().Name} is not a text model"
    let embedding (model: Network) = int64 (asText model).EmbeddingSize
    let rows (data: TextDataset) (index: int64[]) = use i = torch.tensor(index) in data.Tokens.index_select(0L, i)
    let lengths (data: TextDataset) (index: int64[]) = use i = torch.tensor(index) in data.Lengths.index_select(0L, i)
    { Modality = Modality.Text
      ClassNames = List.ofSeq test.ClassNames
      TrainCount = train.Count
      TestCount = test.Count
      TrainLabels = train.Labels
      TestLabels = test.Labels
      Boxes = None
      NewModel = fun () -> textModel spec.Model.Architecture train.Vocabulary.Count :> Network
      Train = fun model options device progress -> TextTraining.Train(asText model, train, options, device, progress)
      Accuracy = fun model device -> TextTraining.Accuracy(asText model, test, device)
      Explained = fun model -> new ReshapedModel(model, [| length; embedding model |], [| length; 1L; embedding model |]) :> Network
      Inputs =
        fun model isTrain index ->
            use tokens = rows (if isTrain then train else test) index
            use e = embed (asText model) tokens
            e.reshape(e.shape.[0], length, 1L, e.shape.[2])
      Covariance =
        fun model jitter device ->
            // One E x E covariance per class over the embeddings of real tokens (padding left out), shared by every position.
            let e = embedding model
            let perClass =
                use scope = torch.NewDisposeScope()
                let vectors = embed (asText model) train.Tokens
                let real = TokenScores.PaddingMask(train.Lengths, length, torch.CPU).logical_not().reshape(-1L).nonzero().squeeze(1L)
                let flatVectors = vectors.reshape(-1L, e).index_select(0L, real)
                let flatLabels = train.Labels.unsqueeze(1L).expand(-1L, length).reshape(-1L).index_select(0L, real)
                use g = new torch.Generator(uint64 (Seeds.Derive(int64 spec.Seed, "text-covariance")), torch.CPU)
                let keep = torch.randperm(flatVectors.shape.[0], generator = g).narrow(0L, 0L, min flatVectors.shape.[0] (covarianceTokens * int64 test.ClassNames.Count))
                let perToken = ClassCovariance.Estimate(flatVectors.index_select(0L, keep).reshape(-1L, 1L, 1L, e), flatLabels.index_select(0L, keep), test.ClassNames.Count, jitter, device)
                perToken.Covariances.clone().MoveToOuterDisposeScope()
            // Re-wrapped for inputs [T, 1, E]: the same (jittered) matrices, shared across the T positions.
            let shared = ClassCovariance.FromCovariances(perClass, length, 1L, e, 0.0)
            perClass.Dispose()
            shared
      MaskedPredictions =
        fun model index maps fractions _ tieBreak device ->
            use scope = torch.NewDisposeScope()
            let tokens = rows test index
            let realLengths = lengths test index
            let scores = TokenScores.Sum(maps.reshape(maps.shape.[0], length, -1L), realLengths)
            TokenMasking(Array.ofList fractions).MaskedPredictions(asText model, tokens, realLengths, scores, tieBreak, device).MoveToOuterDisposeScope()
      // one slot per token position
      MaskedSlots = test.Tokens.shape.[1]
      View = fun index -> TextView(rows test index, lengths test index, test.Vocabulary)
      Speech = None }
