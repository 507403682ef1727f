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
    ]
