module TokenTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators
open Attribution.Data
open Attribution.Models
open Attribution.Methods
open Attribution.Metrics

/// Logits W e_0 from embeddings [B, T, E]: the output depends on token 0's embedding only.
type TokenZeroNet(w: float32[,]) =
    inherit nn.Module<Tensor, Tensor>("token_zero_net")
    let weights = tensor(w)
    override _.forward(e) = e.select(1, 0L).matmul(weights.t())

let private longs (t: Tensor) = t.cpu().data<int64>().ToArray()

let private scoreTests =
    testList "TokenScores" [
        test "Gradient x Input on a model that reads only token 0's embedding scores every other token exactly 0" {
            use scope = NewDisposeScope()
            use g = new Generator(5UL, CPU)
            let embeddings = randn([| 3L; 6L; 4L |], generator = g)
            let net = new TokenZeroNet(array2D [ [ 1f; -2f; 0.5f; 3f ]; [ -1f; 1f; 2f; 0f ] ])
            for output in [ OutputFunction.Logit; OutputFunction.Probability ] do
                use x = Presets.GradientXInput().Explain(net, embeddings, tensor([| 0L; 1L; 0L |]), ExplainOptions(Output = output))
                let scores = TokenScores.Sum(x.Maps)
                Expect.equal scores.shape [| 3L; 6L |] "[B, T]"
                Expect.equal (scores.narrow(1, 1L, 5L).abs().max().ToDouble()) 0.0 $"{output}: tokens 1..5 score 0"
                Expect.isTrue (scores.select(1, 0L).abs().min().ToDouble() > 0.0) $"{output}: token 0 scores"
        }

        test "a word's score is the sum of its embedding coordinates' scores; padding positions score 0 given the lengths" {
            use scope = NewDisposeScope()
            let maps = arange(24.0).reshape(2L, 3L, 4L)
            Expect.equal (TokenScores.Sum(maps) |> fun t -> t.data<float32>().ToArray()) [| 6f; 22f; 38f; 54f; 70f; 86f |] "row sums"
            let masked = TokenScores.Sum(maps, tensor([| 2L; 3L |]))
            Expect.equal (masked.data<float32>().ToArray()) [| 6f; 22f; 0f; 54f; 70f; 86f |] "position 2 of row 0 is padding"
        }
    ]

let private maskingTests =
    testList "TokenMasking" [
        test "the k least important real tokens become <unk>; padding is never chosen and stays <pad>" {
            use scope = NewDisposeScope()
            let tokens = tensor(array2D [ [ 5L; 6L; 7L; 8L; 0L; 0L ]; [ 9L; 9L; 4L; 0L; 0L; 0L ] ])
            let scores = tensor(array2D [ [ 0.4f; 0.1f; 0.3f; 0.2f; -9f; -9f ]; [ 3f; 1f; 2f; -5f; -5f; -5f ] ])
            let lengths = tensor([| 4L; 3L |])
            let masking = TokenMasking()
            let byCount = masking.MaskLeastImportant(tokens, scores, lengths, tensor([| 2L; 9L |]), 0L)
            Expect.equal (longs byCount) [| 5L; 1L; 7L; 1L; 0L; 0L; 1L; 1L; 1L; 0L; 0L; 0L |] "two lowest of row 0; all of row 1 (count capped at the length)"
            let byFraction = masking.MaskLeastImportant(tokens, scores, lengths, 0.5, 0L)
            Expect.equal (longs byFraction) [| 5L; 1L; 7L; 1L; 0L; 0L; 9L; 1L; 1L; 0L; 0L; 0L |] "round(0.5 * 4) = 2 and round(0.5 * 3) = 2"
        }

        test "masked predictions are [F, B]; masking nothing keeps the predictions" {
            use scope = NewDisposeScope()
            torch.manual_seed(0L) |> ignore
            let m = new TextBiLstm(TextBiLstm.Shape(12, EmbeddingSize = 4, Hidden = 3))
            m.eval()
            let tokens = tensor(array2D [ [ 2L; 3L; 4L; 0L ]; [ 5L; 6L; 7L; 8L ] ])
            let lengths = tensor([| 3L; 4L |])
            use g = new Generator(1UL, CPU)
            let scores = randn([| 2L; 4L |], generator = g)
            let predictions = TokenMasking([ 0.0; 0.5; 1.0 ]).MaskedPredictions(m, tokens, lengths, scores, 0L, CPU)
            Expect.equal predictions.shape [| 3L; 2L |] "[F, B]"
            Expect.equal (longs predictions[0L]) (longs (m.Classify(tokens).argmax(1L))) "fraction 0 = unmasked"
        }
    ]

[<Tests>]
let tests = testList "Methods.TokenScores" [ scoreTests; maskingTests ]
