/// The log-Sobolev inequality Ent_mu(f) <= I_mu(f)/2 (Gat et al. 2022, Eq. 8 and Thm 4.1), checked on
/// the engine's Monte-Carlo estimates: for random softmax networks the estimated gap I/2 - Ent must not be
/// significantly negative (more than 3 standard errors over independent repetitions), and for
/// f = exp(a.x + b) the two sides must agree with each other and with the closed form.
module LogSobolevTests

open Expecto
open FsCheck
open FsCheck.FSharp
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Sampling
open TestModels

let private gapRepetitions (model: nn.Module<Tensor, Tensor>) (sampler: IGaussianSampler) (x: Tensor) (target: int64) samples repetitions =
    [ for r in 1 .. repetitions ->
        let fi = Presets.FunctionalInformation(sampler, samples)
        use e = fi.Explain(model, x, tensor([| target |]), ExplainOptions(BatchSize = 4096, Seed = int64 r))
        let ent = e.Diagnostics.["entropy"].item<float>()
        let half = e.Diagnostics.["half_fisher_information"].item<float>()
        ent, half ]

let private meanAndStandardError (xs: float list) =
    let n = float xs.Length
    let m = List.average xs
    let var = (xs |> List.sumBy (fun x -> (x - m) ** 2.0)) / (n - 1.0)
    m, sqrt (var / n)

let private checkInequality seed (sampler: int -> IGaussianSampler) =
    use scope = NewDisposeScope()
    let d = 6
    let model = tinyNet seed d 8 3
    use g = new Generator(uint64 (seed + 1), CPU)
    let x = randn([| 1L; 1L; 1L; int64 d |], generator = g)
    let target = int64 (abs seed % 3)
    let reps = gapRepetitions model (sampler seed) x target 4000 8
    let gaps = reps |> List.map (fun (ent, half) -> half - ent)
    let gap, se = meanAndStandardError gaps
    let ent = reps |> List.averageBy fst
    Expect.isGreaterThanOrEqual ent 0.0 "the functional entropy is non-negative"
    Expect.isGreaterThan (gap + 3.0 * se) 0.0 $"Ent <= I/2 violated beyond Monte-Carlo error: gap {gap} (se {se}), Ent {ent}"

let private config = { FsCheckConfig.defaultConfig with maxTest = 12 }

[<Tests>]
let tests =
    testList "log-Sobolev" [
        testPropertyWithConfig config "Ent_nu(f) <= I_nu(f)/2 for random softmax f and nu = N(x, s^2 I)" <| fun (seed: int) ->
            checkInequality seed (fun s -> IsotropicGaussian(0.3 + float (abs s % 5) * 0.2) :> IGaussianSampler)

        testPropertyWithConfig config "Ent_mu(f) <= I_mu(f)/2 for random softmax f and random PD Sigma (Thm 4.1)" <| fun (seed: int) ->
            checkInequality seed (fun s ->
                let sigma = (randomCovariance s 6).unsqueeze(0).expand(3, 6, 6)
                CovarianceGaussian(ClassCovariance.FromCovariances(sigma, 1L, 1L, 6L), 1.0) :> IGaussianSampler)

        test "Ent_mu(exp(a.x + b)) = I_mu/2 = (a^T C a / 2) E[f], within Monte-Carlo error" {
            use scope = NewDisposeScope()
            let a = [| 0.8f; -0.5f; 0.3f; 0.2f |]
            let model = new ExponentialNet(a, -30.0f)
            let sigma = randomCovariance 5 4
            let cov = ClassCovariance.FromCovariances(sigma.unsqueeze(0).expand(2, 4, 4), 1L, 1L, 4L)
            let x = tensor([| 0.1f; 0.2f; -0.3f; 0.4f |]).view(1, 1, 1, 4)
            let reps = gapRepetitions model (CovarianceGaussian(cov, 1.0)) x 0L 20000 6
            let ent, entSe = reps |> List.map fst |> meanAndStandardError
            let half, _ = reps |> List.map snd |> meanAndStandardError
            // closed form for f = exp(a.z + b), z ~ N(x, C): E f = exp(a.x + b + a^T C a / 2), Ent = I/2 = (a^T C a / 2) E f
            let av = tensor(a).``to``(ScalarType.Float64)
            let aca = av.dot(sigma.matmul(av)).item<float>()
            let ax = Array.fold2 (fun s ai xi -> s + float ai * xi) 0.0 a [| 0.1; 0.2; -0.3; 0.4 |]
            let expected = aca / 2.0 * exp (ax - 30.0 + aca / 2.0)
            Expect.floatClose { absolute = 0.0; relative = 0.05 } half expected "I/2 matches its closed form"
            Expect.floatClose { absolute = 4.0 * entSe; relative = 0.05 } ent expected "Ent matches the closed form"
            Expect.floatClose { absolute = 4.0 * entSe; relative = 0.05 } ent half "the bound is tight for the exponential family"
        }
    ]
