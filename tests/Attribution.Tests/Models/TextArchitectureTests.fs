/// The LSTM and transformer text models of the architecture comparison (Gat et al. 2022, Fig. 3).
module TextArchitectureTests

open System
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators
open Attribution.Data
open Attribution.Models

let private vocabularySize = 12

let private lstmWith pooling seed =
    torch.manual_seed(int64 seed) |> ignore
    let m = new TextLstm(TextLstm.Shape(vocabularySize, EmbeddingSize = 6, Hidden = 5, Pooling = pooling))
    m.eval()
    m

let private lstm seed = lstmWith SequencePooling.MaxOverTime seed

let private transformer seed =
    torch.manual_seed(int64 seed) |> ignore
    let m = new TextTransformer(TextTransformer.Shape(vocabularySize, EmbeddingSize = 8, Heads = 2, Layers = 2, FeedForward = 16))
    m.eval()
    m

let private transformerMean seed =
    torch.manual_seed(int64 seed) |> ignore
    let m = new TextTransformer(TextTransformer.Shape(vocabularySize, EmbeddingSize = 8, Heads = 2, Layers = 1, FeedForward = 16, Pooling = TransformerPooling.Mean))
    m.eval()
    m

/// Three texts of 7 positions; the first ends in two <pad>s, the third in one.
let private batch = tensor(array2D [| [| 2L; 3L; 4L; 5L; 6L; 0L; 0L |]; [| 7L; 8L; 9L; 10L; 11L; 3L; 2L |]; [| 1L; 4L; 4L; 4L; 4L; 4L; 0L |] |])

/// Bit-identical tensors of the same shape.
let private same (a: Tensor) (b: Tensor) = a.shape = b.shape && a.eq(b).all().ToBoolean()

/// d logit_1 / d e[b, t, k] by central differences, in float64.
let private finiteDifference (m: TextModel) (e: Tensor) (b: int64, t: int64, k: int64) =
    let h = 1e-6
    let logitAt (delta: float) =
        use shifted = e.clone()
        shifted[b, t, k] <- shifted[b, t, k] + delta
        use logits = m.forward(shifted)
        logits[b, 1L].ToDouble()
    (logitAt h - logitAt (-h)) / (2.0 * h)

let private modelTests name (build: int -> TextModel) =
    testList name [
        test "shapes: Embed gives [B, T, E] with <pad> the zero vector; forward gives logits [B, 2]; Classify = forward . Embed" {
            use scope = NewDisposeScope()
            let m = build 0
            let e = m.Embed(batch)
            Expect.equal e.shape [| 3L; 7L; int64 m.EmbeddingSize |] "[B, T, E]"
            Expect.equal (e[0L, 6L].abs().sum().ToDouble()) 0.0 "pad -> 0"
            Expect.equal (m.forward(e).shape) [| 3L; 2L |] "[B, C]"
            Expect.isTrue (same (m.Classify(batch)) (m.forward(e))) "Classify"
            Expect.equal (m.forward(m.Embed(batch.narrow(1, 0L, 1L))).shape) [| 3L; 2L |] "a single position works too"
        }

        test "forward is batched: a batch's logits equal its rows' logits one at a time" {
            use scope = NewDisposeScope()
            let m = build 1
            let e = m.Embed(batch).detach()
            let together = m.forward(e)
            for i in 0L .. 2L do
                TestModels.expectCloseOnScale 1e-5 (together.narrow(0, i, 1L)) (m.forward(e.narrow(0, i, 1L))) $"row {i}"
        }

        test "deterministic: the same seed builds the same weights, and forward repeats bit for bit in eval mode" {
            use scope = NewDisposeScope()
            let a, b = build 3, build 3
            let e = a.Embed(batch).detach()
            Expect.isTrue (same (a.forward(e)) (b.forward(e))) "same seed, same logits"
            Expect.isTrue (same (a.forward(e)) (a.forward(e))) "repeatable"
            Expect.isFalse (same (a.forward(e)) ((build 4).forward(e))) "another seed, other logits"
        }

        test "input gradient (autograd.grad w.r.t. the embeddings) is finite and matches central differences in float64" {
            use scope = NewDisposeScope()
            let m = build 5
            m.``to``(ScalarType.Float64) |> ignore
            let e = m.Embed(batch).detach().requires_grad_(true)
            let g = autograd.grad([| m.forward(e).select(1, 1L).sum() |], [| e |]).[0]
            Expect.isTrue (g.isfinite().all().ToBoolean()) "finite"
            Expect.isGreaterThan (g.abs().max().ToDouble()) 1e-4 "not trivially zero"
            let e0 = e.detach()
            for (b, t, k) in [ (0L, 0L, 0L); (0L, 3L, 2L); (1L, 6L, 5L); (2L, 2L, 1L); (0L, 6L, 3L) ] do
                let numeric = finiteDifference m e0 (b, t, k)
                let analytic = g[b, t, k].ToDouble()
                Expect.floatClose { absolute = 1e-7; relative = 1e-5 } analytic numeric $"d logit / d e[{b}, {t}, {k}]"
        }

        test "padding as documented: forward does not mask, so the logits and gradients depend on the padding positions" {
            use scope = NewDisposeScope()
            let m = build 6
            let e = m.Embed(batch).detach()
            let moved = e.clone()
            // Row 0's two padding positions moved by a large, non-constant vector: large, so that they win a max-over-time
            // pooling somewhere; not constant, because the transformer's layer norms remove a shift along (1, ..., 1) (see below).
            for t in [ 5L; 6L ] do moved[0L, t] <- linspace(-3.0, 3.0, int64 m.EmbeddingSize)
            let before, after = m.forward(e), m.forward(moved)
            Expect.isFalse (before[0L].allclose(after[0L], rtol = 0.0, atol = 1e-7)) "the padding vectors are ordinary input"
            Expect.isTrue (same before[1L] after[1L]) "other rows are untouched"
            let x = moved.requires_grad_(true)
            let g = autograd.grad([| m.forward(x).select(1, 1L).sum() |], [| x |]).[0]
            Expect.isGreaterThan (g[0L].narrow(0, 5L, 2L).abs().sum().ToDouble()) 0.0 "padding positions receive gradient (TokenScores.Sum drops them by length)"
        }
    ]

/// Texts of 10 positions from ids 2..11 with trailing padding; label 1 when token 5 occurs.
let private presenceOfFive (n: int) (seed: int) =
    let rng = Random(seed)
    let words = [| 2L; 3L; 4L; 6L; 7L; 8L; 9L; 10L; 11L |]
    let rows = Array.init n (fun i ->
        let length = rng.Next(3, 11)
        let row = Array.init 10 (fun t -> if t < length then words[rng.Next(words.Length)] else 0L)
        if i % 2 = 1 then row[rng.Next(length)] <- 5L
        row)
    let labels = rows |> Array.map (fun r -> if Array.contains 5L r then 1L else 0L)
    let lengths = rows |> Array.map (fun r -> r |> Array.filter (fun t -> t <> 0L) |> Array.length |> int64)
    new TextDataset(tensor(array2D rows), tensor(lengths), tensor(labels),
                    Vocabulary(Array.append [| "<pad>"; "<unk>" |] (Array.init 10 (fun i -> $"w{i + 2}"))), SpamAssassin.ClassNames)

let private learns name (build: unit -> TextModel) (options: TrainingOptions) =
    test $"{name} learns 'token 5 occurs' on padded sequences (test accuracy > 0.9)" {
        use scope = NewDisposeScope()
        use train = presenceOfFive 256 0
        use held = presenceOfFive 200 1
        torch.manual_seed(0L) |> ignore
        let m = build ()
        let report = TextTraining.Train(m, train, options, CPU)
        Expect.isLessThan report.EpochLosses[report.EpochLosses.Count - 1] report.EpochLosses[0] "loss decreases"
        Expect.isGreaterThan (TextTraining.Accuracy(m, held, CPU)) 0.9 "held-out accuracy"
    }

let private positionTests =
    testList "PositionEncoding" [
        test "sinusoidal values: PE(p, 2i) = sin(p / 10000^(2i/E)), PE(p, 2i+1) = cos(same)" {
            use scope = NewDisposeScope()
            let pe = PositionEncoding.Sinusoidal(5L, 6, ScalarType.Float64, CPU)
            Expect.equal pe.shape [| 5L; 6L |] "[T, E]"
            for p in 0 .. 4 do
                for i in 0 .. 2 do
                    let angle = float p / Math.Pow(10000.0, 2.0 * float i / 6.0)
                    Expect.floatClose Accuracy.high (pe[int64 p, int64 (2 * i)].ToDouble()) (Math.Sin angle) $"sin at ({p}, {2 * i})"
                    Expect.floatClose Accuracy.high (pe[int64 p, int64 (2 * i + 1)].ToDouble()) (Math.Cos angle) $"cos at ({p}, {2 * i + 1})"
        }

        test "the transformer sees word order: swapping two words changes the logits (a bag of words would not)" {
            use scope = NewDisposeScope()
            let m = transformerMean 7
            let swapped = batch.clone()
            swapped[1L, 0L] <- batch[1L, 1L]
            swapped[1L, 1L] <- batch[1L, 0L]
            let original, reordered = m.Classify(batch), m.Classify(swapped)
            Expect.isFalse (original[1L].allclose(reordered[1L], rtol = 0.0, atol = 1e-6)) "order matters"
        }
    ]

[<Tests>]
let tests =
    testList "Models.TextArchitectures" [
        modelTests "TextLstm (max over time)" (fun s -> lstm s :> TextModel)
        modelTests "TextLstm (final state)" (fun s -> lstmWith SequencePooling.FinalStates s :> TextModel)
        modelTests "TextTransformer (class token)" (fun s -> transformer s :> TextModel)
        modelTests "TextTransformer (mean pooling)" (fun s -> transformerMean s :> TextModel)
        positionTests
        test "TextTransformer: every layer norm removes a shift of a word's embedding along (1, ..., 1), so each position's input gradient sums to zero over the coordinates" {
            // Closed form: LN(x + c 1) = LN(x), and every reader of the residual stream (attention, feed-forward, the
            // final norm) reads it through a layer norm. So d logit / d e_t . 1 = 0, and a signed word score that sums
            // the gradient's coordinates (TokenScores.Sum of SmoothGrad) is zero up to rounding.
            use scope = NewDisposeScope()
            for build in [ transformer; transformerMean ] do
                let m = build 8
                m.``to``(ScalarType.Float64) |> ignore
                let e = m.Embed(batch).detach().requires_grad_(true)
                let g = autograd.grad([| m.forward(e).select(1, 1L).sum() |], [| e |]).[0]
                Expect.isGreaterThan (g.abs().sum([| 2L |]).min().ToDouble()) 1e-6 "every position has a non-zero gradient"
                Expect.isLessThan (g.sum([| 2L |]).abs().max().ToDouble()) 1e-12 "but its coordinates sum to zero"
            let m = lstm 8
            let e = m.Embed(batch).detach().requires_grad_(true)
            let g = autograd.grad([| m.forward(e).select(1, 1L).sum() |], [| e |]).[0]
            Expect.isGreaterThan (g.sum([| 2L |]).abs().max().ToDouble()) 1e-4 "the LSTM has no such invariance"
        }
        test "TextTransformer rejects an embedding size that the heads do not divide, and names the rule" {
            let e = Expect.throwsC (fun () -> new TextTransformer(TextTransformer.Shape(12, EmbeddingSize = 10, Heads = 4)) |> ignore) id
            Expect.stringContains e.Message "multiple of the heads" "names the rule"
        }
        test "TextTransformer registers every weight: the class token, and each layer's attention and feed-forward" {
            use m = transformer 0
            let names = m.named_parameters() |> Seq.map (fun struct (n, _) -> n) |> Set.ofSeq
            for expected in [ "class_token"; "embedding.weight"; "layers.0.attention.qkv.weight"; "layers.1.ff2.bias"; "norm.weight"; "fc.weight" ] do
                Expect.contains names expected $"{expected} registered"
        }
        testList "training" [
            learns "TextLstm (default: max over time)" (fun () -> new TextLstm(TextLstm.Shape(vocabularySize, EmbeddingSize = 8, Hidden = 8))) (TrainingOptions(Epochs = 25, BatchSize = 32, LearningRate = 0.02))
            learns "TextTransformer" (fun () -> new TextTransformer(TextTransformer.Shape(vocabularySize, EmbeddingSize = 16, Heads = 2, Layers = 1, FeedForward = 32, Dropout = 0.0))) (TrainingOptions(Epochs = 25, BatchSize = 32, LearningRate = 0.01))
        ]
    ]
