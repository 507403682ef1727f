/// The perturbation metrics evaluated a block of inputs at a time (how the runner streams a step's maps from the cache)
/// give every input exactly the numbers of the whole set at once: one tie-breaking generator runs through the blocks,
/// and blocks keep the engine's chunks.
module BlockwiseMetricTests

open System
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Metrics
open TestModels

/// Maps with many exact ties (a third of the values zero, the rest from 4 levels): the tie-break decides most ranks.
let private tiedMaps (seed: int) (shape: int64[]) =
    use g = new Generator(uint64 seed, CPU)
    let levels = randint(0L, 4L, shape, generator = g).``to``(ScalarType.Float32)
    let zero = rand(shape, generator = g).lt(Scalar.op_Implicit (1.0 / 3.0))
    levels.masked_fill(zero, Scalar.op_Implicit 0.0f)

/// Cuts of `total` rows into blocks of `size` (the last shorter).
let private blocks (total: int64) (size: int64) = [ for first in 0L .. size .. total - 1L -> first, min size (total - first) ]

let private sameBits (a: float[]) (b: float[]) what =
    Expect.equal (a |> Array.map BitConverter.DoubleToInt64Bits) (b |> Array.map BitConverter.DoubleToInt64Bits) what

let private textWeights = Array.init 30 (fun i -> if i < 2 then 0f else float32 ((i * 7) % 11) - 5f)

/// 13 texts of up to 12 tokens (ids 2..29, padding 0; lengths 0..12), token scores with many ties, random targets.
let private textSet (seed: int) =
    use g = new Generator(uint64 seed, CPU)
    let lengths = randint(0L, 13L, [| 13L |], generator = g)
    let positions = arange(12L).unsqueeze(0L)
    let real = positions.lt(lengths.unsqueeze(1L))
    let tokens = randint(2L, 30L, [| 13L; 12L |], generator = g).masked_fill(real.logical_not(), Scalar.op_Implicit 0L)
    let scores = randint(0L, 3L, [| 13L; 12L |], generator = g).``to``(ScalarType.Float64)
    {| Tokens = tokens; Lengths = lengths; Scores = scores; Targets = randint(0L, 2L, [| 13L |], generator = g) |}

[<Tests>]
let tests =
    testList "metrics in blocks" [
        test "ranking rows in blocks from one generator gives the ranks of all rows at once, for any cut" {
            use scope = NewDisposeScope()
            let maps = tiedMaps 5 [| 23L; 40L |]
            let whole = FeatureRanking.AscendingRanks(maps, 99L)
            for size in [ 1L; 2L; 5L; 7L; 22L ] do
                use g = new Generator(99UL, CPU)
                let inBlocks = cat([| for first, n in blocks 23L size -> FeatureRanking.AscendingRanks(maps.narrow(0L, first, n), g) |], 0L)
                Expect.isTrue (inBlocks.equal(whole).all().item<bool>()) $"blocks of {size}"
            // and the draws matter: another seed ranks the ties otherwise
            Expect.isFalse (FeatureRanking.AscendingRanks(maps, 98L).equal(whole).all().item<bool>()) "the tie-break depends on the seed"
        }

        test "a generator skipped past the rows before a block ranks the block as one generator running through every row" {
            use scope = NewDisposeScope()
            let maps = tiedMaps 7 [| 29L; 33L |]
            let whole = FeatureRanking.AscendingRanks(maps, 41L)
            for first, n in [ 0L, 29L; 1L, 5L; 13L, 16L; 28L, 1L ] do
                use g = new Generator(41UL, CPU)
                FeatureRanking.SkipRows(g, first, 33L)
                let block = FeatureRanking.AscendingRanks(maps.narrow(0L, first, n), g)
                Expect.isTrue (block.equal(whole.narrow(0L, first, n)).all().item<bool>()) $"rows {first}..{first + n - 1L}"
            // skipping the wrong width puts the block elsewhere in the stream: the ranks differ
            use wrong = new Generator(41UL, CPU)
            FeatureRanking.SkipRows(wrong, 13L, 32L)
            Expect.isFalse (FeatureRanking.AscendingRanks(maps.narrow(0L, 13L, 16L), wrong).equal(whole.narrow(0L, 13L, 16L)).all().item<bool>()) "the width matters"
        }

        test "skipping rows in pieces (rows of 4M slots: 4 rows a piece) leaves the generator where drawing them at once does" {
            use scope = NewDisposeScope()
            let slots = 1L <<< 22
            use whole = new Generator(19UL, CPU)
            let sixth = rand([| 6L; slots |], generator = whole).narrow(0L, 5L, 1L)
            use skipped = new Generator(19UL, CPU)
            FeatureRanking.SkipRows(skipped, 5L, slots)
            Expect.isTrue (rand([| 1L; slots |], generator = skipped).equal(sixth).all().item<bool>()) "the sixth row's draws"
        }

        test "negative perturbation: blocks (a multiple of the batch) give the masked predictions of the whole set" {
            use scope = NewDisposeScope()
            let model = tinyNet 3 16 8 3
            let x = normal 4 [| 24L; 1L; 4L; 4L |]
            let maps = tiedMaps 6 [| 24L; 1L; 4L; 4L |]
            let metric = NegativePerturbation([| 0.1; 0.3; 0.5; 0.7; 0.9 |])
            let whole = metric.MaskedPredictions(model, x, maps, 17L, CPU, 4)
            for size in [ 4L; 8L; 20L ] do
                use g = new Generator(17UL, CPU)
                let inBlocks = cat([| for first, n in blocks 24L size -> metric.MaskedPredictions(model, x.narrow(0L, first, n), maps.narrow(0L, first, n), g, CPU, 4) |], 1L)
                Expect.isTrue (inBlocks.equal(whole).all().item<bool>()) $"blocks of {size}"
        }

        test "negative perturbation of large inputs (ranked 2^24 values at a time) gives each input what ranking it alone gives" {
            use scope = NewDisposeScope()
            // 120 inputs of 3x224x224: 111 are ranked together, then 9
            let shape = [| 120L; 3L; 224L; 224L |]
            torch.manual_seed 21L |> ignore
            let model = nn.Sequential(nn.Flatten(), nn.Linear(3L * 224L * 224L, 3L))
            let x = normal 22 shape
            let maps = tiedMaps 23 shape
            let metric = NegativePerturbation([| 0.2; 0.6 |])
            use g = new Generator(29UL, CPU)
            let whole = metric.MaskedPredictions(model, x, maps, g, CPU)
            use h = new Generator(29UL, CPU)
            let oneByOne = cat([| for i in 0L .. 119L -> metric.MaskedPredictions(model, x.narrow(0L, i, 1L), maps.narrow(0L, i, 1L), h, CPU) |], 1L)
            Expect.sequenceEqual whole.shape [| 2L; 120L |] "a prediction per fraction and input"
            Expect.isTrue (whole.equal(oneByOne).all().item<bool>()) "each input as if alone, ties broken by the generator in row order"
        }

        test "insertion/deletion: blocks (a multiple of InputsPerChunk) give each input the whole set's curves and AUCs, bit for bit" {
            use scope = NewDisposeScope()
            let model = tinyNet 7 16 8 3
            let x = normal 8 [| 19L; 1L; 4L; 4L |]
            let maps = tiedMaps 9 [| 19L; 1L; 4L; 4L |]
            let targets = randint(0L, 3L, [| 19L |], generator = new Generator(10UL, CPU))
            let metric = InsertionDeletion(3)
            let batch = 20
            let chunk = metric.InputsPerChunk(4L, 4L, batch)
            Expect.equal chunk 2L "20 images per batch / 7 steps per input (16 pixels, 3 a step)"
            for substrate in [ Substrate.Black() :> Substrate; Substrate.Blurred(1.0) ] do
                let whole = metric.Evaluate(model, x, maps, targets, substrate, 21L, CPU, batch)
                for size in [ chunk; 3L * chunk ] do
                    use g = new Generator(21UL, CPU)
                    let parts = [| for first, n in blocks 19L size -> metric.Evaluate(model, x.narrow(0L, first, n), maps.narrow(0L, first, n), targets.narrow(0L, first, n), substrate, g, CPU, batch) |]
                    let joined = InsertionDeletionScores.Concatenate parts
                    sameBits joined.Deletion.Auc whole.Deletion.Auc $"{substrate}: deletion AUCs, blocks of {size}"
                    sameBits joined.Insertion.Auc whole.Insertion.Auc $"{substrate}: insertion AUCs, blocks of {size}"
                    sameBits (Array.concat joined.Deletion.Curves) (Array.concat whole.Deletion.Curves) $"{substrate}: deletion curves"
                    Expect.equal (BitConverter.DoubleToInt64Bits joined.Difference) (BitConverter.DoubleToInt64Bits whole.Difference) "Difference"
        }

        test "Sensitivity-N: blocks draw the same index sets and give the whole set's correlations and means, bit for bit" {
            use scope = NewDisposeScope()
            let model = tinyNet 11 16 8 3
            let x = normal 12 [| 13L; 1L; 4L; 4L |]
            let maps = normal 13 [| 13L; 1L; 4L; 4L |]
            let targets = randint(0L, 3L, [| 13L |], generator = new Generator(14UL, CPU))
            let metric = SensitivityN([| 2; 5; 9 |], 6)
            let batch = 12
            let whole = metric.Evaluate(model, x, maps, targets, 31L, CPU, batch)
            // chunks of 12 / 6 = 2 inputs, and the reference logits in chunks of 12
            for size in [ 12L; 24L ] do
                let parts = [| for first, n in blocks 13L size -> metric.Evaluate(model, x.narrow(0L, first, n), maps.narrow(0L, first, n), targets.narrow(0L, first, n), 31L, CPU, batch) |]
                let joined = SensitivityNResult.Concatenate parts
                for k in 0 .. whole.N.Length - 1 do
                    sameBits joined.Correlations.[k] whole.Correlations.[k] $"N = {whole.N.[k]}: correlations, blocks of {size}"
                sameBits joined.MeanCorrelation whole.MeanCorrelation "means"
                Expect.equal joined.Undefined whole.Undefined "undefined counts"
        }

        test "EHR: blocks give the whole set's per-input values, mean and exclusions" {
            use scope = NewDisposeScope()
            let maps = (normal 15 [| 9L; 1L; 8L; 8L |]).abs()
            let boxes : Attribution.Data.IRegion[] =
                [| for i in 0 .. 8 -> Attribution.Data.Box(i % 4, i % 3, 2 + i % 4, 2 + i % 5) :> Attribution.Data.IRegion |]
            let metric = EffectiveHeatRatio()
            let whole = metric.Evaluate(maps, boxes)
            Expect.isGreaterThan whole.Excluded 0 "some boxes are too large, so exclusions are summed across blocks"
            let parts = [| for first, n in blocks 9L 4L -> metric.Evaluate(maps.narrow(0L, first, n), boxes.[int first .. int (first + n) - 1]) |]
            let joined = EffectiveHeatRatioResult.Concatenate parts
            sameBits joined.Ehr whole.Ehr "per input"
            Expect.equal joined.Excluded whole.Excluded "exclusions"
            Expect.equal (BitConverter.DoubleToInt64Bits joined.Mean) (BitConverter.DoubleToInt64Bits whole.Mean) "mean"
        }

        test "token insertion/deletion: blocks (a multiple of InputsPerChunk) give each text the whole set's curves and AUCs, bit for bit" {
            use scope = NewDisposeScope()
            let texts = textSet 21
            let model = new TokenMetricsTests.AdditiveTextNet(textWeights)
            let metric = TokenInsertionDeletion()
            let batch = 42
            let chunk = metric.InputsPerChunk batch
            Expect.equal chunk 2L "42 texts' steps per batch / 21 steps per text"
            let whole = metric.Evaluate(model, texts.Tokens, texts.Lengths, texts.Scores, texts.Targets, 23L, CPU, batch)
            for size in [ chunk; 3L * chunk ] do
                use g = new Generator(23UL, CPU)
                let parts = [| for first, n in blocks 13L size -> metric.Evaluate(model, texts.Tokens.narrow(0L, first, n), texts.Lengths.narrow(0L, first, n), texts.Scores.narrow(0L, first, n), texts.Targets.narrow(0L, first, n), g, CPU, batch) |]
                let joined = InsertionDeletionScores.Concatenate parts
                sameBits joined.Deletion.Auc whole.Deletion.Auc $"deletion AUCs, blocks of {size}"
                sameBits joined.Insertion.Auc whole.Insertion.Auc $"insertion AUCs, blocks of {size}"
                sameBits (Array.concat joined.Insertion.Curves) (Array.concat whole.Insertion.Curves) "insertion curves"
        }

        test "token Sensitivity-N: blocks draw the same keys and give the whole set's correlations, means and skipped counts" {
            use scope = NewDisposeScope()
            let texts = textSet 22
            let model = new TokenMetricsTests.AdditiveTextNet(textWeights)
            let metric = TokenSensitivityN(TokenSensitivityN.DefaultSizes(texts.Lengths, 4), 5)
            let batch = 10
            let whole = metric.Evaluate(model, texts.Tokens, texts.Lengths, texts.Scores, texts.Targets, 29L, CPU, batch)
            Expect.isGreaterThan (Array.sum whole.Skipped) 0 "some texts are too short for some sizes, so skipped counts are summed across blocks"
            for size in [ 10L; 20L ] do
                let parts = [| for first, n in blocks 13L size -> metric.Evaluate(model, texts.Tokens.narrow(0L, first, n), texts.Lengths.narrow(0L, first, n), texts.Scores.narrow(0L, first, n), texts.Targets.narrow(0L, first, n), 29L, CPU, batch) |]
                let joined = SensitivityNResult.Concatenate parts
                for k in 0 .. whole.Sizes.Length - 1 do
                    sameBits joined.Correlations.[k] whole.Correlations.[k] $"size {k}: correlations, blocks of {size}"
                sameBits joined.MeanCorrelation whole.MeanCorrelation "means"
                Expect.equal joined.Skipped whole.Skipped "skipped"
                Expect.equal joined.Undefined whole.Undefined "undefined"
        }
    ]
