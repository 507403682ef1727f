/// InputIBA (Zhang et al. 2021): the Prop. 3 KL, the WGAN stage, the input bottleneck on any shape, the full method.
module InputIbaTests

open System
open System.Collections.Generic
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Models

/// Inputs [B, 1, 8, 8]; stage "features": A = conv1x1(x), K = 2 channels, both = x; stage "head": logits [c, -c],
/// c = 2 * sum of channel 0 over the LEFT half (columns 0..3). The right half never reaches the output.
type HalfNet() as this =
    inherit nn.Module<Tensor, Tensor>("half_net")
    let conv = nn.Conv2d(1L, 2L, 1L)
    do this.RegisterComponents()
    do
        use noGrad = no_grad()
        conv.weight.fill_(Scalar.op_Implicit 1.0f) |> ignore
        match conv.bias with
        | null -> ()
        | b -> b.zero_() |> ignore
    let features (x: Tensor) = conv.forward(x)
    let head (a: Tensor) =
        use scope = NewDisposeScope()
        let c = a.narrow(1L, 0L, 1L).narrow(3L, 0L, 4L).sum([| 1L; 2L; 3L |]) * 2.0
        stack([| c; -c |], 1L).MoveToOuterDisposeScope()
    override _.forward(x) =
        use scope = NewDisposeScope()
        (head (features x)).MoveToOuterDisposeScope()
    interface ILayeredModel with
        member _.Stages = [| "features"; "head" |] :> IReadOnlyList<string>
        member _.ParameterStages = [| "features" |] :> IReadOnlyList<string>
        member _.ForwardTo(stage, x) = if stage = "features" then features x else head (features x)
        member _.ForwardFrom(stage, a) = if stage = "features" then head a else a.alias()
        member _.Reinitialise(_, _) = ()

/// Text-shaped inputs [B, T = 5, E = 3]; stage "features" flattens to [B, 15]; logits [c, -c], c = 2 * sum of token 0's embedding.
type FirstTokenNet() =
    inherit nn.Module<Tensor, Tensor>("first_token_net")
    let head (a: Tensor) =
        use scope = NewDisposeScope()
        let c = a.narrow(1L, 0L, 3L).sum([| 1L |]) * 2.0
        stack([| c; -c |], 1L).MoveToOuterDisposeScope()
    override _.forward(x) =
        use scope = NewDisposeScope()
        (head (x.flatten(1))).MoveToOuterDisposeScope()
    interface ILayeredModel with
        member _.Stages = [| "features"; "head" |] :> IReadOnlyList<string>
        member _.ParameterStages = Array.empty<string> :> IReadOnlyList<string>
        member _.ForwardTo(stage, x) = if stage = "features" then x.flatten(1) else head (x.flatten(1))
        member _.ForwardFrom(stage, a) = if stage = "features" then head a else a.alias()
        member _.Reinitialise(_, _) = ()

/// HalfNet, feature and input statistics over 256 N(0, 1) references, two inputs whose left half says class 0 / class 1.
let private half () =
    use g = new Generator(11UL, CPU)
    let model = new HalfNet()
    let refs = randn([| 256L; 1L; 8L; 8L |], generator = g)
    let features = InformationBottleneck.EstimateActivationStatistics(model, "features", refs)
    let inputs = InputStatistics.Estimate(refs, [| 0 |])
    let x = randn([| 2L; 1L; 8L; 8L |], generator = g) * 0.5
    x.narrow(0L, 0L, 1L).narrow(3L, 0L, 4L).add_(Scalar.op_Implicit 0.5f) |> ignore
    x.narrow(0L, 1L, 1L).narrow(3L, 0L, 4L).add_(Scalar.op_Implicit -0.5f) |> ignore
    model, features, inputs, x, tensor([| 0L; 1L |])

/// The paper's stages with a short WGAN (2 epochs) so that the test stays fast; everything else at its default.
let private quick (features: ActivationStatistics) (inputs: InputStatistics) map =
    InputIba(InformationBottleneck(features), InputMaskGan(epochs = 2), InputBottleneck(inputs), map)

let private same (a: Tensor) (b: Tensor) = Seq.forall2 (=) a.shape b.shape && a.eq(b).all().item<bool>()

/// KL(N(m1, s1^2) || N(m2, s2^2)) from the definition's closed form, in float64 on the host.
let private gaussianKl m1 s1 m2 s2 = log (s2 / s1) + (s1 * s1 + (m1 - m2) * (m1 - m2)) / (2.0 * s2 * s2) - 0.5

[<Tests>]
let tests =
    testList "input_iba" [
        test "Prop. 3 equals KL(P(Z_I|I) || P(Z_I)) of Remarks 1-2 computed from the Gaussian closed form, on random values" {
            use scope = NewDisposeScope()
            use g = new Generator(3UL, CPU)
            let n = 200L
            let x = randn([| n |], dtype = ScalarType.Float64, generator = g) * 2.0
            let mu = randn([| n |], dtype = ScalarType.Float64, generator = g)
            let sigma = rand([| n |], dtype = ScalarType.Float64, generator = g) * 2.0 + 0.1
            let lg = rand([| n |], dtype = ScalarType.Float64, generator = g)
            let lam = rand([| n |], dtype = ScalarType.Float64, generator = g) * 0.98
            let kl = InputBottleneck.Capacity(x, mu, sigma, lg, lam)
            let a (t: Tensor) = t.data<float>().ToArray()
            let xs, ms, ss, gs, ls, ks = a x, a mu, a sigma, a lg, a lam, a kl
            for i in 0 .. int n - 1 do
                let m1 = ls.[i] * xs.[i] + (1.0 - ls.[i]) * ms.[i]
                let s1 = (1.0 - ls.[i]) * ss.[i]
                let m2 = gs.[i] * ls.[i] * xs.[i] + (1.0 - gs.[i] * ls.[i]) * ms.[i]
                let s2 = (1.0 - gs.[i] * ls.[i]) * ss.[i]
                let expected = gaussianKl m1 s1 m2 s2
                Expect.floatClose { absolute = 1e-10; relative = 1e-9 } ks.[i] expected $"element {i}"
        }

        test "Prop. 3 is 0 for equal distributions (lambda_G = 1, or Lambda = 0) and IBA's KL for lambda_G = 0" {
            use scope = NewDisposeScope()
            use g = new Generator(4UL, CPU)
            let x = randn([| 50L |], dtype = ScalarType.Float64, generator = g)
            let lam = rand([| 50L |], dtype = ScalarType.Float64, generator = g) * 0.99
            let mu, sigma = tensor(0.3), tensor(1.7)
            let one = InputBottleneck.Capacity(x, mu, sigma, ones_like(x), lam)
            Expect.isLessThan (one.abs().max().item<float>()) 1e-12 "lambda_G = 1: prior = posterior"
            let closed = InputBottleneck.Capacity(x, mu, sigma, rand([| 50L |], dtype = ScalarType.Float64, generator = g), zeros_like(x))
            Expect.isLessThan (closed.abs().max().item<float>()) 1e-12 "Lambda = 0: all noise, no information"
            let iba = InputBottleneck.Capacity(x, mu, sigma, zeros_like(x), lam)
            let r = (x - mu) / sigma
            let expected = ((lam * r).square() + (1.0 - lam).square() - 1.0 - (1.0 - lam).square().log()) * 0.5
            Expect.isTrue (iba.allclose(expected, 1e-10, 1e-12)) "lambda_G = 0: the Gaussian-prior KL of IBA"
            Expect.isTrue (InputBottleneck.Capacity(x, mu, sigma, rand([| 50L |], dtype = ScalarType.Float64, generator = g), lam).ge(Scalar.op_Implicit -1e-12).all().item<bool>()) "non-negative"
        }

        test "the WGAN moves f(Z_G) towards P(Z*): the closed-form W2 between the per-element Gaussians falls, and so does the critic's estimate" {
            use scope = NewDisposeScope()
            // Features = the input (both channels): f(Z_G) and Z* are Gaussian per element, so W2^2 is known in closed form.
            let model = new HalfNet()
            use g = new Generator(21UL, CPU)
            let x = randn([| 2L; 1L; 8L; 8L |], generator = g)
            let lambdaStar = zeros([| 2L; 2L; 8L; 8L |])
            lambdaStar.narrow(3L, 0L, 4L).fill_(Scalar.op_Implicit 1.0f) |> ignore       // left half kept, right half noise
            use features = new ActivationStatistics("features", zeros([| 2L; 8L; 8L |]), ones([| 2L; 8L; 8L |]), ones([| 2L; 8L; 8L |]), 2L)
            use noise = new InputStatistics(zeros([| 1L; 1L; 1L |]), ones([| 1L; 1L; 1L |]), 2L)
            let gens = [| for k in 0 .. 1 -> new Generator(uint64 (100 + k), CPU) |]
            let gan = InputMaskGan(epochs = 40, criticLearningRate = 1e-3, maskLearningRate = 0.05)
            use fit = gan.Fit(model, "features", x, lambdaStar, features, noise, zeros_like(x), gens)
            for g in gens do g.Dispose()
            // W2^2 per element: (m_gen - m_target)^2 + (s_gen - s_target)^2, with the channel-0 copy of the input.
            let w2 (lg: Tensor) (mu: Tensor) (sd: Tensor) =
                let target = lambdaStar.narrow(1L, 0L, 1L)
                let mGen = lg * x + (1.0 - lg) * mu
                let sGen = ((1.0 - lg) * sd).abs()
                let mTarget = target * x
                let sTarget = 1.0 - target
                ((mGen - mTarget).square() + (sGen - sTarget).square()).sum().item<float32>()
            let before = w2 (ones([| 2L; 1L; 8L; 8L |]) * 0.5) (zeros([| 2L; 1L; 1L; 1L |])) (ones([| 2L; 1L; 1L; 1L |]))
            let after = w2 fit.Mask fit.NoiseMean fit.NoiseStd
            Expect.isLessThan after (0.5f * before) $"W2^2 falls by half at least: {before} -> {after}"
            let left = fit.Mask.narrow(3L, 0L, 4L).mean().item<float32>()
            let right = fit.Mask.narrow(3L, 4L, 4L).mean().item<float32>()
            Expect.isGreaterThan left 0.5f $"lambda_G rises where lambda* = 1 ({left})"
            Expect.isLessThan right 0.5f $"lambda_G falls where lambda* = 0 ({right})"
            Expect.sequenceEqual fit.Wasserstein.shape [| int64 gan.CriticSteps; 2L |] "one estimate per critic step and input"
            let perEpoch = int64 (gan.CriticSteps / gan.Epochs)
            let estimate (from: int64) = fit.Wasserstein.narrow(0L, from, 5L * perEpoch).mean().item<float32>()
            let peak = [ 0L .. perEpoch .. fit.Wasserstein.shape.[0] - 5L * perEpoch ] |> List.map estimate |> List.max
            let last = estimate (fit.Wasserstein.shape.[0] - 5L * perEpoch)
            Expect.isLessThan last (0.5f * peak) $"the critic's estimate (5-epoch means) falls from its peak {peak} to {last}"
        }

        test "InputIBA puts (almost) no capacity on the input half the model ignores, and a clear amount on the half it reads" {
            use scope = NewDisposeScope()
            let model, features, inputs, x, t = half ()
            for map in [ InputIbaMap.CapacityBits; InputIbaMap.Mask ] do
                use e = (quick features inputs map).Explain(model, x, t, ExplainOptions())
                Expect.sequenceEqual e.Maps.shape x.shape "shaped like the inputs"
                for i in 0L .. 1L do
                    let m = e.Maps.[i, 0L]
                    let used = m.narrow(1L, 0L, 4L).mean().item<float32>()
                    let ignored = m.narrow(1L, 6L, 2L).max().item<float32>()   // beyond the smoothing radius (2) from column 3
                    Expect.isGreaterThan used 0.05f $"{map}, input {i}: the read half ({used})"
                    Expect.isLessThan ignored (0.05f * used) $"{map}, input {i}: the ignored half ({ignored} vs {used})"
                for name in [ "capacity_bits"; "feature_capacity_bits"; "generator_mask_mean"; "wasserstein_first_epoch"; "wasserstein_last_epoch" ] do
                    Expect.sequenceEqual e.Diagnostics.[name].shape [| 2L |] $"{name}: one per input"
            features.Dispose(); inputs.Dispose()
        }

        test "InputIBA is deterministic with a seed, independent of the chunk size and of the batch, leak-free, and leaves the model alone" {
            use scope = NewDisposeScope()
            let model, features, inputs, x, t = half ()
            // Few steps everywhere: the properties under test do not depend on convergence.
            let method = InputIba(InformationBottleneck(features, steps = 3), InputMaskGan(epochs = 1), InputBottleneck(inputs, steps = 10), InputIbaMap.CapacityBits)
            use a = method.Explain(model, x, t, ExplainOptions())
            use b = method.Explain(model, x, t, ExplainOptions())
            Expect.isTrue (same a.Maps b.Maps) "bit-identical twice"
            let live = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            do
                use e = method.Explain(model, x, t, ExplainOptions())
                ()
            Expect.equal DisposeScopeManager.Statistics.ThreadTotalLiveCount live "no tensor leaks per explanation"
            use chunked = method.Explain(model, x, t, ExplainOptions(BatchSize = 1))
            use alone = method.Explain(model, x.narrow(0L, 1L, 1L), t.narrow(0L, 1L, 1L), ExplainOptions(InputKeys = [| 1L |]))
            use other = method.Explain(model, x, t, ExplainOptions(Seed = 5L))
            TestModels.expectCloseOnScale 1e-4 a.Maps chunked.Maps "chunk invariance"
            TestModels.expectCloseOnScale 1e-4 (a.Maps.narrow(0L, 1L, 1L)) alone.Maps "an input's map does not depend on its batch"
            Expect.isFalse (same a.Maps other.Maps) "the seed reaches the noise"
            for p in model.parameters() do
                Expect.isTrue p.requires_grad "requires_grad restored"
                Expect.isTrue (match p.grad with null -> true | g -> g.abs().sum().item<float32>() = 0.0f) "no gradient on the parameters"
            features.Dispose(); inputs.Dispose()
        }

        test "the input bottleneck works on text-shaped inputs [B, T, E]: the capacity sits on the token the model reads" {
            use scope = NewDisposeScope()
            use g = new Generator(8UL, CPU)
            let model = new FirstTokenNet()
            let refs = randn([| 64L; 5L; 3L |], generator = g)
            use noise = InputStatistics.Estimate(refs, [| 1 |])
            Expect.sequenceEqual noise.Mean.shape [| 1L; 3L |] "per embedding coordinate"
            let x = randn([| 2L; 5L; 3L |], generator = g)
            x.narrow(0L, 0L, 1L).narrow(1L, 0L, 1L).fill_(Scalar.op_Implicit 1.0f) |> ignore
            x.narrow(0L, 1L, 1L).narrow(1L, 0L, 1L).fill_(Scalar.op_Implicit -1.0f) |> ignore
            let t = tensor([| 0L; 1L |])
            // beta is per mean element: with 15 elements, the paper's 20 would make 3 informative coordinates cost
            // more than the cross-entropy can gain, and the bottleneck would close everywhere.
            let beta = 0.5
            use e = InputBottleneck(noise, beta = beta).Explain(model, x, t, ExplainOptions())
            Expect.sequenceEqual e.Maps.shape x.shape "shaped like the embeddings"
            let perToken = e.Maps.sum([| 2L |])
            for i in 0L .. 1L do
                let first = perToken.[i, 0L].item<float32>()
                let rest = perToken.[i].narrow(0L, 1L, 4L).max().item<float32>()
                Expect.isGreaterThan first 0.1f $"input {i}: bits on token 0 ({first})"
                Expect.isLessThan rest (0.05f * first) $"input {i}: ~0 on the unread tokens ({rest})"
            // The full pipeline on the same shapes: features [B, 15] (an MLP critic), no image initialisation.
            use features = InformationBottleneck.EstimateActivationStatistics(model, "features", refs)
            use whole = InputIba(InformationBottleneck(features, beta = beta), InputMaskGan(epochs = 1), InputBottleneck(noise, beta = beta)).Explain(model, x, t, ExplainOptions())
            Expect.sequenceEqual whole.Maps.shape x.shape "the full method on [B, T, E]"
            let fullTokens = whole.Maps.sum([| 2L |])
            for i in 0L .. 1L do
                Expect.isLessThan (fullTokens.[i].narrow(0L, 1L, 4L).max().item<float32>()) (0.05f * fullTokens.[i, 0L].item<float32>()) $"input {i}: full InputIBA on token 0"
        }

        test "InputIBA refuses a model that cannot be cut at a stage and an unknown stage" {
            let flat = TestModels.tinyNet 1 4 5 2
            let model, features, inputs, x, t = half ()
            let e1 = Expect.throwsC (fun () -> (quick features inputs InputIbaMap.Mask).Explain(flat, rand(1, 1, 2, 2), tensor([| 0L |]), ExplainOptions()) |> ignore) id
            Expect.stringContains e1.Message "ILayeredModel" "says what is needed"
            use bad = InformationBottleneck.EstimateActivationStatistics(new FashionCnn(), "conv1", rand(4, 1, 28, 28))
            let e2 = Expect.throwsC (fun () -> InputIba(bad, inputs).Explain(model, x, t, ExplainOptions()) |> ignore) id
            Expect.stringContains e2.Message "conv1" "names the stage"
            features.Dispose(); inputs.Dispose()
        }
    ]
