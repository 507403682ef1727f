/// The samplers draw from the distributions they claim: moments within statistical tolerance.
module SamplerTests

open Expecto
open FsCheck
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Sampling
open TestModels

let private config = { FsCheckConfig.defaultConfig with maxTest = 8 }

[<Tests>]
let tests =
    testList "samplers" [
        testPropertyWithConfig config "covariance Gaussian: sample mean and covariance of z ~ N(x, s Sigma) match, within 5 standard errors" <| fun (seed: int) ->
            use scope = NewDisposeScope()
            let d, n, s = 5, 20000, 0.7
            let sigma = randomCovariance seed d
            let sampler = CovarianceGaussian(ClassCovariance.FromCovariances(sigma.unsqueeze(0), 1L, 1L, int64 d), s)
            let x = arange(float d).``to``(ScalarType.Float32).view(1, 1, 1, d)
            use g = new Generator(uint64 (abs seed), CPU)
            use set = sampler.Draw(x, 0L, n, g)
            let z = set.Points.reshape(int64 n, int64 d).``to``(ScalarType.Float64)
            let c = sigma * s
            let mean = z.mean([| 0L |])
            let meanError = ((mean - x.reshape(int64 d).``to``(ScalarType.Float64)) / (c.diagonal() / float n).sqrt()).abs().max().item<float>()
            Expect.isLessThan meanError 5.0 "mean"
            let centred = z - mean
            let empirical = centred.t().matmul(centred) / float (n - 1)
            // Var of a sample covariance entry: (C_ii C_jj + C_ij^2) / n
            let se = ((c.diagonal().outer(c.diagonal()) + c.square()) / float n).sqrt()
            let covError = ((empirical - c) / se).abs().max().item<float>()
            Expect.isLessThan covError 5.0 "covariance"

        test "class covariance: the estimate of data drawn from a known covariance converges to it" {
            use scope = NewDisposeScope()
            let d = 4
            let sigma = randomCovariance 11 d
            let l = linalg.cholesky(sigma)
            use g = new Generator(7UL, CPU)
            let n = 40000
            let data = randn([| int64 n; int64 d |], dtype = ScalarType.Float64, generator = g).matmul(l.t()).``to``(ScalarType.Float32)
            let images = data.view(int64 n, 1, 2, 2)
            let labels = zeros(int64 n, dtype = ScalarType.Int64)
            use cov = ClassCovariance.Estimate(images, labels, 1, 0.0)
            let se = ((sigma.diagonal().outer(sigma.diagonal()) + sigma.square()) / float n).sqrt()
            let err = ((cov.Covariances.[0L].``to``(ScalarType.Float64) - sigma) / se).abs().max().item<float>()
            Expect.isLessThan err 5.0 "within 5 standard errors"
        }

        test "class covariance adds jitter only when the matrix is singular, and its factor reproduces it" {
            use scope = NewDisposeScope()
            // the last pixel is constant: Sigma is singular
            use g = new Generator(3UL, CPU)
            let images = rand([| 50L; 1L; 2L; 2L |], generator = g)
            images.select(2, 1L).select(2, 1L).fill_(0.5f) |> ignore
            use cov = ClassCovariance.Estimate(images, zeros(50L, dtype = ScalarType.Int64), 1, 1e-6)
            Expect.isGreaterThan cov.Jitters.[0] 0.0 "jitter added"
            let f = cov.Factors.[0L]
            Expect.isTrue (f.matmul(f.t()).allclose(cov.Covariances.[0L], 1e-4, 1e-6)) "L L^T = Sigma + jI"
        }

        test "isotropic Gaussian: mean x and standard deviation stdev" {
            use scope = NewDisposeScope()
            let sampler = IsotropicGaussian(0.3)
            use g = new Generator(5UL, CPU)
            use set = sampler.Draw(ones(1, 1, 1, 3), 0L, 50000, g)
            let z = set.Points.reshape(50000L, 3L)
            Expect.isTrue (z.mean([| 0L |]).allclose(ones(3), 0.0, 0.01)) "mean"
            Expect.isTrue (z.std([| 0L |]).allclose(full(3L, 0.3f), 0.0, 0.01)) "stdev"
        }
    ]
