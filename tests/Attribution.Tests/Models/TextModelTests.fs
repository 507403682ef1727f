module TextModelTests

open System
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators
open Attribution.Data
open Attribution.Models
open Attribution.Methods

let private tokens (rows: int64[][]) = tensor(array2D rows)

let private bilstm seed =
    torch.manual_seed(int64 seed) |> ignore
    let m = new TextBiLstm(TextBiLstm.Shape(12, EmbeddingSize = 6, Hidden = 5))
    m.eval()
    m

let private cnn seed =
    torch.manual_seed(int64 seed) |> ignore
    let m = new TextCnn(TextCnn.Shape(12, EmbeddingSize = 6, FiltersPerWidth = 4))
    m.eval()
    m

let private batch = [| [| 2L; 3L; 4L; 5L; 6L; 0L; 0L |]; [| 7L; 8L; 9L; 10L; 11L; 3L; 2L |]; [| 1L; 4L; 4L; 4L; 4L; 4L; 0L |] |]

let private shapeTests name (build: int -> TextModel) =
    testList name [
        test "Embed gives [B, T, E]; the <pad> embedding is the zero vector; forward(Embed(tokens)) gives logits [B, 2]" {
            use scope = NewDisposeScope()
            let m = build 0
            let e = m.Embed(tokens batch)
            Expect.equal e.shape [| 3L; 7L; 6L |] "[B, T, E]"
            Expect.equal (e[0L, 6L].abs().sum().ToDouble()) 0.0 "pad -> 0"
            Expect.equal (m.forward(e).shape) [| 3L; 2L |] "[B, C]"
            Expect.equal (m.Classify(tokens batch).shape) [| 3L; 2L |] "Classify = forward . Embed"
        }

        test "forward is batched: a batch's logits equal its rows' logits one at a time" {
            use scope = NewDisposeScope()
            let m = build 1
            let e = m.Embed(tokens batch).detach()
            let together = m.forward(e)
            for i in 0L .. 2L do
                let alone = m.forward(e.narrow(0, i, 1L))
                TestModels.expectCloseOnScale 1e-5 (together.narrow(0, i, 1L)) alone $"row {i}"
        }

        test "forward rejects token ids and names Embed" {
            use scope = NewDisposeScope()
            let e = Expect.throwsC (fun () -> (build 0).forward(tokens batch) |> ignore) id
            Expect.stringContains e.Message "Embed(tokens)" "points to Embed"
        }

        test "every gradient method runs on embeddings unchanged: SmoothGrad maps have the embeddings' shape" {
            use scope = NewDisposeScope()
            let m = build 2
            let e = m.Embed(tokens batch).detach()
            use x = Presets.SmoothGrad(samples = 4).Explain(m, e, tensor([| 0L; 1L; 1L |]), ExplainOptions(BatchSize = 5))
            Expect.equal x.Maps.shape e.shape "maps like inputs"
            Expect.isTrue (x.Maps.isfinite().all().ToBoolean()) "finite (TextCnn's Conv1d gave NaN input gradients under CPU load; see TextCnn.cs)"
        }
    ]

/// Texts of 8 tokens from ids 2..9; label 1 when the keyword 3 occurs.
let private keywordData (n: int) (seed: int) =
    let rng = Random(seed)
    let rows = Array.init n (fun i ->
        let length = rng.Next(3, 9)
        let row = Array.init 8 (fun t -> if t < length then int64 (rng.Next(4, 10)) else 0L)
        if i % 2 = 1 then row[rng.Next(length)] <- 3L
        row)
    let labels = rows |> Array.map (fun r -> if Array.contains 3L r then 1L else 0L)
    let lengths = rows |> Array.map (fun r -> r |> Array.filter (fun t -> t <> 0L) |> Array.length |> int64)
    new TextDataset(tensor(array2D rows), tensor(lengths), tensor(labels), Vocabulary(Array.append [| "<pad>"; "<unk>" |] (Array.init 8 (fun i -> $"w{i + 2}"))), SpamAssassin.ClassNames)

let private trainingTests =
    testList "TextTraining" [
        test "a tiny BiLSTM learns 'does the keyword occur' on padded sequences within seconds" {
            use scope = NewDisposeScope()
            use train = keywordData 256 0
            use test = keywordData 128 1
            torch.manual_seed(0L) |> ignore
            let m = new TextBiLstm(TextBiLstm.Shape(10, EmbeddingSize = 8, Hidden = 8))
            let report = TextTraining.Train(m, train, TrainingOptions(Epochs = 25, BatchSize = 32, LearningRate = 0.02), CPU)
            Expect.isLessThan report.EpochLosses[report.EpochLosses.Count - 1] report.EpochLosses[0] "loss decreases"
            Expect.isGreaterThanOrEqual (TextTraining.Accuracy(m, test, CPU)) 0.95 "test accuracy"
        }
    ]

[<Tests>]
let tests =
    testList "Models.Text" [
        shapeTests "TextBiLstm" (fun s -> bilstm s :> TextModel)
        shapeTests "TextCnn" (fun s -> cnn s :> TextModel)
        test "TextCnn needs at least 5 positions (its widest filter) and says so" {
            use scope = NewDisposeScope()
            let m = cnn 0
            let e = Expect.throwsC (fun () -> m.forward(zeros(1L, 4L, 6L)) |> ignore) id
            Expect.stringContains e.Message "T >= 5" "names the minimum"
        }
        trainingTests
    ]
