/// Conditional subset sampling (Functional Information, Cor. 4.2): the subset moves as the conditional
/// Gaussian says, the rest stays (or follows its marginal, and then the pair is N(x, Sigma)).
module ConditionalGaussianTests

open Expecto
open FsCheck
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Sampling
open TestModels

let private config = { FsCheckConfig.defaultConfig with maxTest = 5 }

/// A subset of 1..d-1 of d features, from the seed.
let private subsetOf (seed: int) (d: int) =
    let bits = (abs seed % ((1 <<< d) - 2)) + 1
    [| for i in 0 .. d - 1 -> (bits >>> i) &&& 1 = 1 |]

/// Sample mean and covariance of rows [n, k] against (mean, cov), in standard errors: the largest deviations.
let private moments (z: Tensor) (mean: Tensor) (cov: Tensor) =
    let n = float z.shape.[0]
    let m = z.mean([| 0L |])
    let meanError = ((m - mean) / (cov.diagonal() / n).sqrt()).abs().max().item<float>()
    let centred = z - m
    let empirical = centred.t().matmul(centred) / (n - 1.0)
    let se = ((cov.diagonal().outer(cov.diagonal()) + cov.square()) / n).sqrt()
    meanError, ((empirical - cov) / se).abs().max().item<float>()

let private indices (mask: bool[]) value = tensor([| for i in 0 .. mask.Length - 1 do if mask.[i] = value then int64 i |])

[<Tests>]
let tests =
    testList "samplers/conditional gaussian" [
        testPropertyWithConfig config "rest fixed: z1 has mean x1 and covariance S11 - S12 S22^-1 S21 (5 standard errors), and nothing outside S moves" <| fun (seed: int) ->
            use scope = NewDisposeScope()
            let d = 5
            let sigma = randomCovariance seed d
            let mask = subsetOf seed d
            let one, two = indices mask true, indices mask false
            use sampler = new ConditionalGaussian(sigma, tensor(mask))
            use g = new Generator(uint64 (abs seed + 2), CPU)
            let x = randn([| 1L; 1L; 1L; int64 d |], generator = g)
            use set = sampler.Draw(x, 0L, 10000, g)
            let z = set.Points.reshape(10000L, int64 d).``to``(ScalarType.Float64)
            let xf = x.reshape(int64 d).``to``(ScalarType.Float64)
            let s12 = sigma.index_select(0L, one).index_select(1L, two)
            let s22 = sigma.index_select(0L, two).index_select(1L, two)
            let schur = sigma.index_select(0L, one).index_select(1L, one) - s12.matmul(linalg.inv(s22)).matmul(s12.t())
            let meanError, covError = moments (z.index_select(1L, one)) (xf.index_select(0L, one)) schur
            Expect.isLessThan meanError 5.0 "mean x1"
            Expect.isLessThan covError 5.0 "conditional covariance"
            let rest = z.index_select(1L, two)
            Expect.isTrue (rest.eq(xf.index_select(0L, two).unsqueeze(0)).all().item<bool>()) "z2 = x2 exactly"

        testPropertyWithConfig config "rest from its marginal: the pair (z1, z2) is N(x, Sigma) (5 standard errors)" <| fun (seed: int) ->
            use scope = NewDisposeScope()
            let d = 5
            let sigma = randomCovariance (seed + 1) d
            use sampler = new ConditionalGaussian(sigma, tensor(subsetOf seed d), ConditionalRest.RestFromMarginal)
            use g = new Generator(uint64 (abs seed + 3), CPU)
            let x = randn([| 1L; 1L; 1L; int64 d |], generator = g)
            use set = sampler.Draw(x, 0L, 10000, g)
            let z = set.Points.reshape(10000L, int64 d).``to``(ScalarType.Float64)
            let meanError, covError = moments z (x.reshape(int64 d).``to``(ScalarType.Float64)) sigma
            Expect.isLessThan meanError 5.0 "mean x"
            Expect.isLessThan covError 5.0 "joint covariance Sigma"

        test "C g: the conditional covariance on S and 0 elsewhere with the rest fixed; Sigma with the rest from its marginal" {
            use scope = NewDisposeScope()
            let d = 6
            let sigma = randomCovariance 8 d
            let mask = [| true; false; true; true; false; false |]
            let one, two = indices mask true, indices mask false
            use fixedRest = new ConditionalGaussian(sigma, tensor(mask), relativeJitter = 0.0)
            use marginal = new ConditionalGaussian(sigma, tensor(mask), ConditionalRest.RestFromMarginal, 0.0)
            let grads = normal 47 [| 3L; 1L; 1L; int64 d |]
            let targets = tensor([| 0L; 2L; 1L |])
            let gf = grads.reshape(3, d).``to``(ScalarType.Float64)
            let applied = fixedRest.ApplyCovariance(grads, targets).reshape(3, d).``to``(ScalarType.Float64)
            let s12 = sigma.index_select(0L, one).index_select(1L, two)
            let schur = sigma.index_select(0L, one).index_select(1L, one) - s12.matmul(linalg.inv(sigma.index_select(0L, two).index_select(1L, two))).matmul(s12.t())
            Expect.isTrue (applied.index_select(1L, one).allclose(gf.index_select(1L, one).matmul(schur), 1e-4, 1e-5)) "Schur complement on S"
            Expect.isTrue (applied.index_select(1L, two).eq(Scalar.op_Implicit 0.0).all().item<bool>()) "0 outside S"
            let appliedMarginal = marginal.ApplyCovariance(grads, targets).reshape(3, d).``to``(ScalarType.Float64)
            Expect.isTrue (appliedMarginal.allclose(gf.matmul(sigma), 1e-4, 1e-5)) "Sigma"
        }

        test "functional information with the rest fixed is zero outside the subset" {
            use scope = NewDisposeScope()
            let d = 6
            let model = tinyNet 6 d 8 3
            let mask = [| false; true; true; false; true; false |]
            use sampler = new ConditionalGaussian(randomCovariance 4 d, tensor(mask))
            let x = rand(2, 1, 1, d)
            use e = Presets.FunctionalInformation(sampler, 16).Explain(model, x, tensor([| 0L; 2L |]), ExplainOptions())
            let maps = e.Maps.reshape(2, d)
            Expect.isTrue (maps.index_select(1L, indices mask false).eq(Scalar.op_Implicit 0.0f).all().item<bool>()) "0 outside S"
            Expect.isTrue (maps.index_select(1L, indices mask true).gt(Scalar.op_Implicit 0.0f).any().item<bool>()) "information on S"
            Expect.isTrue (e.Diagnostics.["half_fisher_information"].isfinite().all().item<bool>()) "the certificate's I/2 is reported"
        }

        test "an empty subset and a mismatched input are refused" {
            use scope = NewDisposeScope()
            let sigma = randomCovariance 1 3
            Expect.throwsT<System.ArgumentException> (fun () -> new ConditionalGaussian(sigma, tensor([| false; false; false |])) |> ignore) "empty subset"
            use sampler = new ConditionalGaussian(sigma, tensor([| true; false; true |]))
            use g = new Generator(1UL, CPU)
            Expect.throwsT<System.ArgumentException> (fun () -> sampler.Draw(rand([| 1L; 1L; 1L; 4L |], generator = g), 0L, 2, g) |> ignore) "4 features for a 3 x 3 covariance"
        }
    ]
