/// The KSG mutual-information estimator on distributions whose MI is known.
module MutualInformationTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Information

/// n samples of a standard bivariate Gaussian with correlation rho.
let private gaussian (seed: uint64) (n: int64) (rho: float) =
    use g = new Generator(seed, CPU)
    let u = randn([| n |], dtype = ScalarType.Float64, generator = g)
    let v = randn([| n |], dtype = ScalarType.Float64, generator = g)
    u, rho * u + sqrt (1.0 - rho * rho) * v

[<Tests>]
let tests =
    testList "mutual information" [
        test "KSG (k = 3) on bivariate Gaussians: -0.5 log(1 - rho^2) within 0.06 nats" {
            use scope = NewDisposeScope()
            for rho in [ 0.3; 0.6; 0.9 ] do
                let x, y = gaussian 1UL 1500L rho
                let exact = -0.5 * log (1.0 - rho * rho)
                let estimate = MutualInformation.Ksg(x, y)
                Expect.isTrue (abs (estimate - exact) < 0.06) $"rho {rho}: estimate {estimate}, exact {exact}"
        }

        test "KSG on independent variables is about 0, and near the exact MI after a monotone map of one side" {
            use scope = NewDisposeScope()
            // one estimate at N = 1000 scatters by about 0.02-0.03 nats; the mean of four by half that
            let e = [ for s in 10UL .. 13UL -> let x, y = gaussian s 1000L 0.0 in MutualInformation.Ksg(x, y) ] |> List.average
            Expect.isTrue (abs e < 0.03) $"independent: mean of four estimates {e}"
            let x2, y2 = gaussian 3UL 600L 0.7
            let a = MutualInformation.Ksg(x2, y2)
            let b = MutualInformation.Ksg(x2.exp(), y2)
            // the true MI is invariant to the map; the estimate only approximately (distances change)
            let exact = -0.5 * log (1.0 - 0.49)
            Expect.isTrue (abs (a - exact) < 0.06 && abs (b - exact) < 0.06) $"monotone map: {a} and {b}, exact {exact}"
        }

        test "explanation certainty: a map that is the input has high MI, a map independent of it about 0" {
            use scope = NewDisposeScope()
            use g = new Generator(4UL, CPU)
            let x = rand([| 8L; 1L; 16L; 16L |], generator = g)
            let noise = rand([| 8L; 1L; 16L; 16L |], generator = g)
            let same = MutualInformation.PixelwiseExplanationCertainty(x, x * 2.0, maxSamples = 1000)
            let blind = MutualInformation.PixelwiseExplanationCertainty(x, noise, maxSamples = 1000)
            Expect.isTrue (same > 2.0) $"map = 2 x: {same}"
            Expect.isTrue (abs blind < 0.05) $"independent map: {blind}"
        }

        // The interval claims to be the size of the estimate's spread over other draws of inputs of the same kind. That
        // spread is measured here directly, over 60 independent sets of inputs, in two worlds: pixels i.i.d. across
        // inputs (true MI known), and inputs that differ from each other (a shared offset per input moves all its
        // pixels and their attributions together, so 20 inputs carry far less information than 4,000 pixels suggest).
        testSequenced <| test "explanation certainty's jackknife interval: its standard error is the spread of the estimate over independent input sets, and it covers" {
            use scope = NewDisposeScope()
            let rho = 0.6
            let check (name: string) (inputs: int64) (pixels: int64) (offsets: bool) =
                let runs =
                    [| for d in 1 .. 60 do
                         use inner = NewDisposeScope()
                         use g = new Generator(uint64 (500 + d), CPU)
                         let shared =
                             if offsets then randn([| inputs; 1L |], dtype = ScalarType.Float64, generator = g)
                             else zeros([| inputs; 1L |], dtype = ScalarType.Float64)
                         let x = randn([| inputs; pixels |], dtype = ScalarType.Float64, generator = g) + shared
                         let noise = randn([| inputs; pixels |], dtype = ScalarType.Float64, generator = g)
                         let z = rho * x + sqrt (1.0 - rho * rho) * noise + shared
                         let struct (value, ci) = ExplanationCertainty.Pixelwise(x, z, 512, 3, int64 d)
                         Expect.equal value (MutualInformation.PixelwiseExplanationCertainty(x, z, 512, 3, int64 d)) "the value is the estimate's, from the same pairs"
                         yield value, ci.Low, ci.High |]
                let values = runs |> Array.map (fun (v, _, _) -> v)
                let mean = Array.average values
                let spread = sqrt ((values |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / float (values.Length - 1))
                // half-width / t(9): the standard error each interval states
                let stated = runs |> Array.averageBy (fun (_, low, high) -> (high - low) / 2.0 / 2.2622)
                // The jackknife's variance is biased upwards (Efron and Stein 1981): wider than the spread is allowed
                // (up to twice), narrower only by the noise of a spread measured from 60 values.
                Expect.isTrue (stated > spread / 1.3 && stated < spread * 2.0) $"{name}: stated standard error {stated} against the measured spread {spread}"
                // i.i.d. pixels: the exact MI; differing inputs: the centre of the estimates (the pooled MI has no closed form)
                let target = if offsets then mean else -0.5 * log (1.0 - rho * rho)
                let covered = runs |> Array.filter (fun (_, low, high) -> low <= target && target <= high) |> Array.length
                Expect.isTrue (covered >= 51) $"{name}: {covered} of 60 intervals hold {target}"
            check "i.i.d. pixels" 64L 64L false
            check "inputs that differ" 20L 200L true
        }

        test "explanation certainty's interval: NaN ends for one input, and the group count is checked" {
            use scope = NewDisposeScope()
            use g = new Generator(9UL, CPU)
            let x = rand([| 1L; 1L; 16L; 16L |], generator = g)
            let struct (value, ci) = ExplanationCertainty.Pixelwise(x, x * 2.0, 200)
            Expect.isTrue (value > 1.0 && System.Double.IsNaN ci.Low && System.Double.IsNaN ci.High) $"one input: {value} [{ci.Low}, {ci.High}]"
            Expect.throwsT<System.ArgumentOutOfRangeException> (fun () -> ExplanationCertainty.Pixelwise(x, x, groups = 1) |> ignore) "one group"
        }

        test "explanation certainty's pairs: distinct positions in range, ascending, every position equally likely" {
            let total, pairs = 50L, 10
            let counts = Array.zeroCreate<int> (int total)
            let draws = 4000
            for seed in 1 .. draws do
                let p = ExplanationCertainty.PairPositions(total, pairs, int64 seed)
                Expect.hasLength p pairs "as many as asked"
                Expect.isTrue (p |> Array.pairwise |> Array.forall (fun (a, b) -> a < b)) "ascending, so distinct"
                Expect.isTrue (p.[0] >= 0L && p.[pairs - 1] < total) "in range"
                for q in p do counts.[int q] <- counts.[int q] + 1
            // each position is chosen with probability pairs / total = 0.2: 800 of 4,000 draws, binomial sd 25.3
            let expected = float draws * float pairs / float total
            let chiSquare = counts |> Array.sumBy (fun c -> (float c - expected) ** 2.0 / (expected * (1.0 - float pairs / float total)))
            // 49 degrees of freedom (the counts sum to a constant): the 0.999 quantile is 85.4
            Expect.isLessThan chiSquare 85.4 $"counts {counts}"
            Expect.equal (ExplanationCertainty.PairPositions(7L, 10, 1L)) [| 0L .. 6L |] "fewer positions than pairs: all of them"
        }

        test "explanation certainty gathered a block of inputs at a time is the whole set's, bit for bit" {
            use scope = NewDisposeScope()
            use g = new Generator(11UL, CPU)
            let x = rand([| 23L; 2L; 5L; 5L |], generator = g)
            let z = x * x + 0.3 * rand([| 23L; 2L; 5L; 5L |], generator = g)
            let struct (whole, wholeInterval) = ExplanationCertainty.Pixelwise(x, z, 600, 3, 5L)
            Expect.equal (MutualInformation.PixelwiseExplanationCertainty(x, z, 600, 3, 5L)) whole "the same value without the interval"
            let positions = ExplanationCertainty.PairPositions(x.numel(), 600, 5L)
            let blocks =
                [ for first in 0L .. 7L .. 22L ->
                    let n = min 7L (23L - first)
                    ExplanationCertainty.PairsIn(x.narrow(0L, first, n), z.narrow(0L, first, n), first, positions) ]
            let values = cat([| for struct (v, _) in blocks -> v |], 0L)
            let attributions = cat([| for struct (_, a) in blocks -> a |], 0L)
            let struct (blockwise, blockwiseInterval) = ExplanationCertainty.Estimate(values, attributions, positions, 50L, 23L, 3, 5L)
            Expect.equal blockwise whole "the same estimate"
            Expect.equal blockwiseInterval wholeInterval "the same interval"
        }
    ]
