/// ROAR in the engine (Attribution.Metrics.Roar): which pixels a map sends to the fill value, the random ranking, and
/// one point of the curve with a retraining callback.
module RoarTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Metrics

let private values (t: Tensor) = t.reshape(-1L).data<float32>().ToArray()

/// A "retrained model" that predicts class 1 where pixel (0, 0) of the first channel was removed (set to 0) and class 0
/// elsewhere.
type private CornerRemovedNet() =
    inherit nn.Module<Tensor, Tensor>("corner_removed")
    override _.forward(x) =
        use scope = NewDisposeScope()
        let removed = x.reshape(x.shape.[0], -1L).select(1L, 0L).eq(Scalar.op_Implicit 0.0f).``to``(ScalarType.Float32)
        stack([| 1.0 - removed; removed |], 1L).MoveToOuterDisposeScope()

[<Tests>]
let tests =
    testList "roar" [
        test "a perfect ranking removes exactly the top pixels; the reversed ranking removes the other end" {
            use scope = NewDisposeScope()
            // One 1x4x4 input with values 1..16; the map ranks pixel i by its value (perfect) or by -value (reversed).
            let x = arange(1.0, 17.0, dtype = ScalarType.Float32).reshape(1L, 1L, 4L, 4L)
            let fill = zeros(1L, 1L, 1L, 1L)
            let kept (t: Tensor) = values t |> Array.filter (fun v -> v <> 0.0f) |> Array.sort
            Expect.equal (kept (Roar.RemoveMostImportant(x, x, 0.25, fill, 3L))) [| 1.0f .. 12.0f |] "the 4 largest (13..16) removed"
            Expect.equal (kept (Roar.RemoveMostImportant(x, x.neg(), 0.25, fill, 3L))) [| 5.0f .. 16.0f |] "the 4 smallest (1..4) removed"
            Expect.equal (kept (Roar.RemoveMostImportant(x, x, 0.0, fill, 3L))) [| 1.0f .. 16.0f |] "fraction 0 removes nothing"
        }

        test "ties are broken by the seed, channels are summed, and the fill is per channel" {
            use scope = NewDisposeScope()
            let x = ones(2L, 2L, 3L, 3L)
            let flat = zeros(2L, 2L, 3L, 3L)
            let fill = tensor([| 5.0f; 7.0f |]).reshape(1L, 2L, 1L, 1L)
            let a = Roar.RemoveMostImportant(x, flat, 0.5, fill, 11L)
            let b = Roar.RemoveMostImportant(x, flat, 0.5, fill, 11L)
            Expect.sequenceEqual (values a) (values b) "same seed, same pixels"
            // round(0.5 * 9) = 4 pixels (the same in both channels) removed per input
            for i in 0L .. 1L do
                let c0 = values a.[i, 0L]
                let c1 = values a.[i, 1L]
                Expect.equal (c0 |> Array.filter ((=) 5.0f) |> Array.length) 4 "four pixels of channel 0 get its fill"
                Expect.equal (Array.map (fun v -> v = 5.0f) c0) (Array.map (fun v -> v = 7.0f) c1) "the same pixels in both channels"
            let others = [ 12L .. 20L ] |> List.map (fun s -> values (Roar.RemoveMostImportant(x, flat, 0.5, fill, s)))
            Expect.isTrue (others |> List.exists (fun o -> o <> values a)) "other seeds break the ties otherwise"
            // A map whose channel sum ranks pixel 0 first removes pixel 0 even if one channel alone says otherwise.
            let map = zeros(1L, 2L, 3L, 3L)
            map.[0L, 0L, 0L, 0L] <- tensor(3.0f)
            map.[0L, 1L, 0L, 0L] <- tensor(-1.0f)
            map.[0L, 1L, 2L, 2L] <- tensor(1.5f)
            let one = Roar.RemoveMostImportant(x.narrow(0L, 0L, 1L), map, 1.0 / 9.0, fill, 11L)
            Expect.equal (one.[0L, 0L, 0L, 0L].item<float32>()) 5.0f "pixel (0, 0): channel sum 2 beats 1.5"
        }

        // Maps with many exact ties (zeros, as Integrated Gradients gives on a black background) and distinct values.
        test "exactly round(q H W) pixels of every input are replaced by the channel mean, and each removed pixel scores at least as high as each kept one" {
            use scope = NewDisposeScope()
            use g = new Generator(17UL, CPU)
            let b, c, h, w = 6L, 3L, 7L, 5L
            let x = rand([| b; c; h; w |], generator = g) + 2.0          // no input value equals the fill by chance
            let maps = randn([| b; c; h; w |], generator = g) * rand([| b; 1L; h; w |], generator = g).gt(Scalar.op_Implicit 0.6).``to``(ScalarType.Float32)
            let fill = Roar.ChannelMean x
            Expect.isTrue (fill.allclose(x.mean([| 0L; 2L; 3L |]).view(1L, c, 1L, 1L), 0.0, 0.0)) "the fill is the mean per channel"
            let scores = maps.``to``(ScalarType.Float64).sum(1L).reshape(b, h * w)
            for fraction in [ 0.1; 0.37; 0.5; 0.9; 1.0 ] do
                let k = int64 (System.Math.Round(fraction * float (h * w)))
                let masked = Roar.RemoveMostImportant(x, maps, fraction, fill, 5L)
                let removed = masked.eq(fill.expand_as(x))                          // [B, C, H, W]
                let removedPixels = removed.all(1L).reshape(b, h * w)
                Expect.isTrue (removed.any(1L).eq(removed.all(1L)).all().item<bool>()) $"q = {fraction}: a pixel goes in all its channels or in none"
                Expect.isTrue (masked.eq(x).logical_or(removed).all().item<bool>()) $"q = {fraction}: every other value is the input's"
                for i in 0L .. b - 1L do
                    let r = removedPixels.[i]
                    Expect.equal (r.sum().item<int64>()) k $"q = {fraction}, input {i}: k pixels removed"
                    if k > 0L && k < h * w then
                        let s = scores.[i]
                        let lowestRemoved = s.masked_select(r).min().item<float>()
                        let highestKept = s.masked_select(r.logical_not()).max().item<float>()
                        Expect.isGreaterThanOrEqual lowestRemoved highestKept $"q = {fraction}, input {i}: the top-k by score"
        }

        test "ROAR removes the top k of the ranking every perturbation metric shares, ties included" {
            use scope = NewDisposeScope()
            use g = new Generator(23UL, CPU)
            // Tie-heavy maps: a few distinct levels, so the cut at k falls inside blocks of equal scores.
            let maps = randint(0L, 3L, [| 5L; 2L; 6L; 6L |], generator = g).``to``(ScalarType.Float32)
            let x = rand([| 5L; 2L; 6L; 6L |], generator = g) + 2.0
            let fill = zeros(1L, 2L, 1L, 1L)
            for fraction in [ 0.2; 0.5; 0.8 ] do
                let k = int64 (System.Math.Round(fraction * 36.0))
                let ranks = FeatureRanking.DescendingRanks(maps.``to``(ScalarType.Float64).sum(1L).reshape(5L, 36L), 9L)
                let removed = Roar.RemoveMostImportant(x, maps, fraction, fill, 9L).eq(Scalar.op_Implicit 0.0f).all(1L).reshape(5L, 36L)
                Expect.isTrue (removed.eq(ranks.lt(Scalar.op_Implicit k)).all().item<bool>()) $"q = {fraction}: the pixels ranked below {k}"
        }

        // Test inputs 1x2x2 with one bright pixel each; the "retrained model" predicts class 1 where pixel (0, 0) was
        // removed and class 0 elsewhere, so the accuracy follows from which pixels each removal took.
        test "a ROAR point: both sets are masked by their own scores before retraining, and the accuracy is the percent of test labels predicted" {
            use scope = NewDisposeScope()
            let trainInputs = full([| 4L; 1L; 2L; 2L |], Scalar.op_Implicit 3.0f)
            let trainScores = arange(16.0, dtype = ScalarType.Float32).reshape(4L, 1L, 2L, 2L)   // pixel (1, 1) first
            let testInputs = tensor([| 9.0f; 1.0f; 1.0f; 1.0f
                                       1.0f; 9.0f; 1.0f; 1.0f
                                       9.0f; 1.0f; 1.0f; 1.0f
                                       1.0f; 1.0f; 9.0f; 1.0f |]).reshape(4L, 1L, 2L, 2L)
            let fill = zeros(1L, 1L, 1L, 1L)
            let mutable seen = None
            let retrain =
                RoarRetraining(fun maskedTrain ->
                    seen <- Some(maskedTrain.eq(Scalar.op_Implicit 0.0f).sum().item<int64>())
                    new CornerRemovedNet())
            let train, test = RoarSet.Whole(trainInputs, trainScores), RoarSet.Whole(testInputs, testInputs)
            // the test map ranks each input by its own values: one pixel of four (q = 1/4) is its bright pixel
            let accuracy = Roar.Accuracy(train, test, [| 1L; 1L; 1L; 0L |], fill, 0.25, 3L, retrain, CPU)
            Expect.equal seen (Some 4L) "the training set lost one pixel per input, by its own scores"
            // inputs 0 and 2 lose pixel (0, 0) -> class 1 (labels 1, 1: right); input 1 keeps it -> 0 (label 1: wrong);
            // input 3 keeps it -> 0 (label 0: right)
            Expect.equal accuracy 75.0 "3 of 4"
            Expect.equal (Roar.Accuracy(train, test, [| 0L; 0L; 0L; 0L |], fill, 0.0, 3L, retrain, CPU)) 100.0 "nothing removed: class 0 everywhere"
            Expect.throwsT<System.ArgumentException> (fun () -> Roar.Accuracy(train, test, [| 0L |], fill, 0.5, 3L, retrain, CPU) |> ignore) "one label per test input"
        }

        // 11 training and 7 test inputs with tie-heavy maps, masked whole and in blocks of 1, 3 and 4 inputs: the masked
        // sets, and so the retrained model and its predictions, are the same; the "retraining" records the masked
        // training set and returns a net that predicts from which pixels a test input lost.
        test "a set masked a block at a time is masked as the whole set at once, for the method's ranking and for the random one" {
            use scope = NewDisposeScope()
            use g = new Generator(29UL, CPU)
            let shape (n: int64) = [| n; 2L; 3L; 3L |]
            let trainInputs, testInputs = rand(shape 11L, generator = g) + 2.0, rand(shape 7L, generator = g) + 2.0
            let levels (n: int64) = randint(0L, 3L, shape n, generator = g).``to``(ScalarType.Float32)
            let trainMaps, testMaps = levels 11L, levels 7L
            let fill = zeros(1L, 2L, 1L, 1L)
            let labels = [| 0L; 1L; 0L; 1L; 1L; 0L; 1L |]
            let run (blockSize: int64) (ranked: bool) =
                let set (inputs: Tensor) (maps: Tensor) =
                    let whole = if ranked then RoarSet.Whole(inputs, maps) else RoarSet.Whole(inputs, Unchecked.defaultof<Tensor | null>)
                    if blockSize = 0L then whole else RoarSet(whole.Count, whole.Inputs, whole.Scores, blockSize)
                let mutable maskedTrain = None
                let retrain =
                    RoarRetraining(fun masked ->
                        maskedTrain <- Some(masked.clone().DetachFromDisposeScope())
                        new CornerRemovedNet())
                let right = Roar.Correct(set trainInputs trainMaps, set testInputs testMaps, labels, fill, 0.4, 5L, retrain, CPU)
                maskedTrain.Value, right
            for ranked in [ true; false ] do
                let wholeTrain, wholeRight = run 0L ranked
                Expect.isFalse (wholeTrain.equal(trainInputs).all().item<bool>()) "something was removed"
                for blockSize in [ 1L; 3L; 4L ] do
                    let train, right = run blockSize ranked
                    Expect.isTrue (train.equal(wholeTrain).all().item<bool>()) $"ranked {ranked}, blocks of {blockSize}: the masked training set"
                    Expect.equal right wholeRight $"ranked {ranked}, blocks of {blockSize}: which test inputs are predicted right"
        }

        // The random ranking's scores are U(0, 1) draws shaped like the inputs, the training set's first: ranking both
        // sets by those draws, given as scores, masks them as the random ranking does.
        test "the random ranking ranks by U(0, 1) draws, the training set's first, from the seeded generator" {
            use scope = NewDisposeScope()
            use g = new Generator(31UL, CPU)
            let trainInputs, testInputs = rand([| 5L; 1L; 4L; 4L |], generator = g) + 2.0, rand([| 3L; 1L; 4L; 4L |], generator = g) + 2.0
            let fill = zeros(1L, 1L, 1L, 1L)
            use random = Roar.RandomRanking 7L
            let trainDraws = rand([| 5L; 1L; 4L; 4L |], generator = random)
            let testDraws = rand([| 3L; 1L; 4L; 4L |], generator = random)
            let masked (scores: (Tensor * Tensor) option) =
                let mutable maskedTrain = None
                let retrain = RoarRetraining(fun m -> maskedTrain <- Some(m.clone().DetachFromDisposeScope()); new CornerRemovedNet())
                let right =
                    let train, test =
                        match scores with
                        | Some(trainScores, testScores) -> RoarSet.Whole(trainInputs, trainScores), RoarSet.Whole(testInputs, testScores)
                        | None -> RoarSet.Whole(trainInputs, null), RoarSet.Whole(testInputs, null)
                    Roar.Correct(train, test, [| 1L; 1L; 1L |], fill, 0.5, 7L, retrain, CPU)
                maskedTrain.Value, right
            let randomTrain, randomRight = masked None
            let drawnTrain, drawnRight = masked (Some(trainDraws, testDraws))
            Expect.isTrue (randomTrain.equal(drawnTrain).all().item<bool>()) "the training set"
            Expect.equal randomRight drawnRight "the test set's predictions"
            let otherTrain, _ = masked (Some(rand([| 5L; 1L; 4L; 4L |], generator = g), rand([| 3L; 1L; 4L; 4L |], generator = g)))
            Expect.isFalse (randomTrain.equal(otherTrain).all().item<bool>()) "other draws mask otherwise"
        }
    ]
