/// Token insertion/deletion and token Sensitivity-N on an additive text model whose answers are known in closed form.
module TokenMetricsTests

open System
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Models
open Attribution.Metrics

/// Logits [s, -s] with s = the sum of per-token weights w[token]: a token's contribution to logit c is exactly
/// +-w[token], and p(class 0) = sigmoid(2 s). w[<pad>] = w[<unk>] = 0, so masking a token removes its contribution.
type AdditiveTextNet(weights: float32[]) =
    inherit TextModel("additive_text")
    let table = tensor(weights).view(-1L, 1L)
    override _.EmbeddingSize = 1
    override _.Embed(tokens: Tensor) = table.index_select(0L, tokens.flatten()).view(tokens.shape.[0], tokens.shape.[1], 1L)
    override _.forward(e: Tensor) =
        use scope = NewDisposeScope()
        let s = e.sum([| 1L; 2L |])
        stack([| s; s.neg() |], 1L).MoveToOuterDisposeScope()

let private vocabulary = 40
let private weights =
    let rng = Random(3)
    Array.init vocabulary (fun i -> if i < 2 then 0f else float32 (rng.NextDouble() * 4.0 - 2.0))

let private width = 12
let private lengths = [| 12; 7; 3; 9; 0; 10 |]
let private classes = [| 0L; 1L; 0L; 1L; 0L; 0L |]
/// Real tokens are ids 2 .. vocabulary - 1 (never <unk>), padding 0.
let private rows =
    let rng = Random(5)
    lengths |> Array.map (fun l -> Array.init width (fun p -> if p < l then int64 (rng.Next(2, vocabulary)) else 0L))

let private sign c = if c = 0L then 1.0 else -1.0
/// Exact contribution of each position to the target's logit (0 at padding).
let private contributions = Array.init rows.Length (fun i -> rows.[i] |> Array.map (fun id -> sign classes.[i] * float weights.[int id]))

let private tokensT () = tensor(array2D rows)
let private lengthsT () = tensor(lengths |> Array.map int64)
let private targetsT () = tensor(classes)
let private scoresT (s: float[][]) = tensor(array2D s)
/// Reversed ranking: the exact contributions negated (padding stays 0, and is ranked last anyway).
let private reversed = contributions |> Array.map (Array.map (fun v -> -v))

let private sigmoid (x: float) = 1.0 / (1.0 + exp -x)

/// Probability of the target after keeping (or masking) the top-c positions by exact contribution: the oracle.
let private oracle (game: PerturbationGame) (i: int) (ranking: float[]) (c: int) =
    let order = [| 0 .. lengths.[i] - 1 |] |> Array.sortByDescending (fun p -> ranking.[p])
    let top = order |> Array.truncate c |> Set.ofArray
    let kept = [| 0 .. lengths.[i] - 1 |] |> Array.filter (fun p -> (game = PerturbationGame.Deletion) <> top.Contains p)
    let s = kept |> Array.sumBy (fun p -> float weights.[int rows.[i].[p]])
    sigmoid (2.0 * sign classes.[i] * s)

let private stepCount (steps: int) (s: int) (l: int) = int (Math.Round(float s / float steps * float l, MidpointRounding.ToEven))

let private insertionDeletionTests =
    testList "TokenInsertionDeletion" [
        test "curves equal the closed form of the additive model, step by step, for the exact and the reversed ranking" {
            use scope = NewDisposeScope()
            let model = new AdditiveTextNet(weights)
            let metric = TokenInsertionDeletion()
            for ranking in [ contributions; reversed ] do
                let result = metric.Evaluate(model, tokensT (), lengthsT (), scoresT ranking, targetsT (), 0L, CPU)
                Expect.equal result.Substrate "unk" "substrate name"
                Expect.sequenceEqual result.Deletion.Fractions [| for s in 0 .. 20 -> float s / 20.0 |] "x = 0, 0.05, .., 1"
                for i in 0 .. rows.Length - 1 do
                    for s in 0 .. 20 do
                        let c = stepCount 20 s lengths.[i]
                        Expect.floatClose Accuracy.medium result.Deletion.Curves.[i].[s] (oracle PerturbationGame.Deletion i ranking.[i] c) $"deletion, text {i}, step {s}"
                        Expect.floatClose Accuracy.medium result.Insertion.Curves.[i].[s] (oracle PerturbationGame.Insertion i ranking.[i] c) $"insertion, text {i}, step {s}"
        }

        test "the exact ranking beats the reversed one: lower deletion AUC, higher insertion AUC, text by text" {
            use scope = NewDisposeScope()
            let model = new AdditiveTextNet(weights)
            let metric = TokenInsertionDeletion()
            let good = metric.Evaluate(model, tokensT (), lengthsT (), scoresT contributions, targetsT (), 0L, CPU)
            let bad = metric.Evaluate(model, tokensT (), lengthsT (), scoresT reversed, targetsT (), 0L, CPU)
            Expect.isLessThan good.Deletion.MeanAuc bad.Deletion.MeanAuc "deletion"
            Expect.isGreaterThan good.Insertion.MeanAuc bad.Insertion.MeanAuc "insertion"
            Expect.isGreaterThan good.Difference 0.0 "Difference > 0 for the exact ranking"
            Expect.isLessThan bad.Difference 0.0 "Difference < 0 for the reversed one"
            for i in 0 .. rows.Length - 1 do
                Expect.isLessThanOrEqual good.Deletion.Auc.[i] (bad.Deletion.Auc.[i] + 1e-9) $"deletion, text {i}"
                Expect.isGreaterThanOrEqual good.Insertion.Auc.[i] (bad.Insertion.Auc.[i] - 1e-9) $"insertion, text {i}"
        }

        test "end points: deletion starts and insertion ends at the original probability; the other ends are all <unk>" {
            use scope = NewDisposeScope()
            let model = new AdditiveTextNet(weights)
            let original = nn.functional.softmax(model.Classify(tokensT ()).``to``(ScalarType.Float64), 1L).gather(1L, targetsT().view(-1L, 1L))
            let result = TokenInsertionDeletion().Evaluate(model, tokensT (), lengthsT (), scoresT contributions, targetsT (), 0L, CPU)
            for i in 0 .. rows.Length - 1 do
                let p = original.[int64 i, 0L].item<float>()
                Expect.floatClose Accuracy.high result.Deletion.Curves.[i].[0] p $"deletion step 0, text {i}"
                Expect.floatClose Accuracy.high result.Insertion.Curves.[i].[20] p $"insertion last step, text {i}"
                Expect.floatClose Accuracy.high result.Deletion.Curves.[i].[20] 0.5 $"deletion last step (all <unk>: s = 0), text {i}"
                Expect.floatClose Accuracy.high result.Insertion.Curves.[i].[0] 0.5 $"insertion step 0, text {i}"
        }

        test "each step is its own copy: padding is never touched; step s has round(s/S * length) tokens at <unk> (deletion) or revealed (insertion)" {
            use scope = NewDisposeScope()
            let metric = TokenInsertionDeletion(steps = 10)
            let original = tokensT ()
            for game in [ PerturbationGame.Deletion; PerturbationGame.Insertion ] do
                let steps = metric.Perturbed(original, lengthsT (), scoresT contributions, game, 0L)
                Expect.sequenceEqual steps.shape [| int64 rows.Length; 11L; int64 width |] "[B, S + 1, T]"
                for i in 0 .. rows.Length - 1 do
                    for s in 0 .. 10 do
                        let row = steps.[int64 i, int64 s].data<int64>().ToArray()
                        let c = stepCount 10 s lengths.[i]
                        Expect.sequenceEqual (row |> Array.skip lengths.[i]) (Array.zeroCreate (width - lengths.[i])) $"{game}: padding of text {i} at step {s}"
                        let unk = row |> Array.take lengths.[i] |> Array.filter ((=) 1L) |> Array.length
                        Expect.equal unk (if game = PerturbationGame.Deletion then c else lengths.[i] - c) $"{game}: <unk> count, text {i}, step {s}"
                        for p in 0 .. lengths.[i] - 1 do
                            Expect.isTrue (row.[p] = 1L || row.[p] = rows.[i].[p]) "a real token is itself or <unk>"
                // the most important token goes first
                let top = contributions.[0] |> Array.indexed |> Array.maxBy snd |> fst
                let first = steps.[0L, 1L, int64 top].item<int64>()
                Expect.equal first (if game = PerturbationGame.Deletion then 1L else rows.[0].[top]) $"{game}: the top token changes at step 1"
        }

        test "ties are broken by the seed: the same seed gives identical curves, another seed other curves; batch size does not matter" {
            use scope = NewDisposeScope()
            let model = new AdditiveTextNet(weights)
            let flat = zeros([| int64 rows.Length; int64 width |], dtype = ScalarType.Float64)
            let run (seed: int64) (batch: int) = TokenInsertionDeletion().Evaluate(model, tokensT (), lengthsT (), flat, targetsT (), seed, CPU, batch)
            let a, b, c = run 4L 1024, run 4L 1024, run 5L 1024
            Expect.sequenceEqual (Array.concat a.Deletion.Curves) (Array.concat b.Deletion.Curves) "same seed, deletion"
            Expect.sequenceEqual (Array.concat a.Insertion.Curves) (Array.concat b.Insertion.Curves) "same seed, insertion"
            Expect.notEqual (Array.concat a.Deletion.Curves) (Array.concat c.Deletion.Curves) "another seed"
            let small = run 4L 7
            for i in 0 .. rows.Length - 1 do
                for s in 0 .. 20 do
                    Expect.floatClose Accuracy.high small.Deletion.Curves.[i].[s] a.Deletion.Curves.[i].[s] "batch 7 = batch 1024"
        }
    ]

/// Each text's exact contributions moved one real position on (a cyclic shift): a wrong attribution of the same values.
let private shifted =
    contributions |> Array.mapi (fun i c -> Array.init width (fun p -> if p < lengths.[i] then c.[(p + 1) % lengths.[i]] else 0.0))

let private count n = SubsetSize.Count(n) :> SubsetSize
let private fraction f = SubsetSize.Fraction(f) :> SubsetSize

let private sensitivityTests =
    testList "TokenSensitivityN" [
        test "exact contributions on the additive model: correlation 1 for every count and fraction; texts too short are skipped" {
            use scope = NewDisposeScope()
            let model = new AdditiveTextNet(weights)
            let sizes = [ count 1; count 2; count 4; count 8; fraction 0.25; fraction 0.5 ]
            let result = TokenSensitivityN(sizes, 50).Evaluate(model, tokensT (), lengthsT (), scoresT contributions, targetsT (), 3L, CPU)
            let expectedSkipped =
                sizes |> List.map (fun s -> lengths |> Array.filter (fun l -> not (s.For(int64 l).HasValue)) |> Array.length)
            Expect.sequenceEqual result.Skipped expectedSkipped "skipped: length <= N, or a fraction rounding to 0 or the whole text"
            // lengths 12 7 3 9 0 10: N = 1, 2 skip the empty text; N = 4 also 3; N = 8 also 7; both fractions skip only the
            // empty text (0.25 * 3 rounds to 1, 0.5 * 3 to 2, 0.5 * 7 to 4: all below the length)
            Expect.sequenceEqual result.Skipped [ 1; 1; 2; 3; 1; 1 ] "skipped by hand"
            for k in 0 .. sizes.Length - 1 do
                Expect.equal result.Undefined.[k] 0 $"{sizes.[k]}: every evaluated correlation defined"
                Expect.floatClose Accuracy.medium result.MeanCorrelation.[k] 1.0 $"{sizes.[k]}"
                for i in 0 .. rows.Length - 1 do
                    Expect.equal (Double.IsNaN result.Correlations.[k].[i]) (not (sizes.[k].For(int64 lengths.[i]).HasValue)) $"NaN exactly where skipped, text {i}"
        }

        test "the same values on the wrong tokens (a cyclic shift) correlate clearly below 1" {
            use scope = NewDisposeScope()
            let model = new AdditiveTextNet(weights)
            let sizes = [ count 1; count 2; count 4; fraction 0.5 ]
            let result = TokenSensitivityN(sizes, 100).Evaluate(model, tokensT (), lengthsT (), scoresT shifted, targetsT (), 3L, CPU)
            for k in 0 .. sizes.Length - 1 do
                Expect.isLessThan result.MeanCorrelation.[k] 0.8 $"{sizes.[k]}: mean correlation {result.MeanCorrelation.[k]}"
        }

        test "masks are shared: equal lengths get equal sets, each text masks exactly its size, only real tokens, the lowest keys" {
            use scope = NewDisposeScope()
            use g = new Generator(9UL, CPU)
            let keys = rand([| 30L; 8L |], generator = g)
            let masks = TokenSensitivityN.SubsetMasks(keys, tensor([| 6L; 6L; 3L; 8L |]), tensor([| 2L; 2L; 2L; 5L |]))
            Expect.sequenceEqual masks.shape [| 4L; 30L; 8L |] "[n, M, T]"
            Expect.isTrue (masks.[0L].eq(masks.[1L]).all().item<bool>()) "equal lengths, equal sets"
            let perRow = masks.sum([| 2L |]).``to``(ScalarType.Int64)
            for (j, size) in [ (0, 2L); (1, 2L); (2, 2L); (3, 5L) ] do
                Expect.isTrue (perRow.[int64 j].eq(Scalar.op_Implicit size).all().item<bool>()) $"text {j} masks {size} tokens in every set"
            Expect.equal (masks.[2L].narrow(1, 3L, 5L).any().item<bool>()) false "length 3: positions 3.. never masked"
            Expect.equal (masks.[0L].narrow(1, 6L, 2L).any().item<bool>()) false "length 6: positions 6.. never masked"
            // text 2 masks the two lowest keys among positions 0..2
            let lowest = keys.narrow(1, 0L, 3L).argsort(1L).narrow(1, 0L, 2L)
            Expect.isTrue (masks.[2L].narrow(1, 0L, 3L).gather(1L, lowest).all().item<bool>()) "the two lowest-keyed real positions"
        }

        test "determinism: the same seed gives identical correlations, another seed others; batch size does not matter" {
            use scope = NewDisposeScope()
            let model = new AdditiveTextNet(weights)
            let run seed batch = TokenSensitivityN([ count 2; fraction 0.5 ], 20).Evaluate(model, tokensT (), lengthsT (), scoresT shifted, targetsT (), seed, CPU, batch)
            let a, b, c, small = run 1L 1024, run 1L 1024, run 2L 1024, run 1L 30
            let bits (r: SensitivityNResult) = r.Correlations |> Array.concat |> Array.map BitConverter.DoubleToInt64Bits
            Expect.sequenceEqual (bits a) (bits b) "same seed, bit for bit"
            Expect.notEqual (bits a) (bits c) "another seed"
            for k in 0 .. 1 do
                for i in 0 .. rows.Length - 1 do
                    let x, y = a.Correlations.[k].[i], small.Correlations.[k].[i]
                    Expect.isTrue ((Double.IsNaN x && Double.IsNaN y) || abs (x - y) < 1e-9) $"batch 30 = batch 1024 (size {k}, text {i})"
        }

        test "default sizes: a log grid from 1 to 80% of the median length" {
            use scope = NewDisposeScope()
            let sizes = TokenSensitivityN.DefaultSizes(tensor([| 100L; 10L; 50L; 200L; 0L |]))
            Expect.equal sizes.[0] (count 1) "starts at 1"
            Expect.equal sizes.[sizes.Length - 1] (count 40) "median 50 -> round(0.8 * 50)"
        }
    ]

let private leakTests =
    testList "live tensors" [
        test "the live-tensor count stays flat over repeated evaluations of both metrics" {
            let model = new AdditiveTextNet(weights)
            let tokens, ls, targets = tokensT (), lengthsT (), targetsT ()
            let scores = scoresT contributions
            let once () =
                TokenInsertionDeletion().Evaluate(model, tokens, ls, scores, targets, 0L, CPU, 16) |> ignore
                TokenSensitivityN([ count 2; fraction 0.5 ], 10).Evaluate(model, tokens, ls, scores, targets, 0L, CPU, 16) |> ignore
            once ()
            let before = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            for _ in 1 .. 5 do once ()
            Expect.equal DisposeScopeManager.Statistics.ThreadTotalLiveCount before "no tensor left alive by evaluating"
        }
    ]

[<Tests>]
let tests = testList "Metrics.TokenMetrics" [ insertionDeletionTests; sensitivityTests; leakTests ]
