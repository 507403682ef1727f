using Attribution.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>What the WGAN of InputIBA's second stage found, per input; the record owns its tensors.</summary>
/// <param name="Mask">lambda_G = sigmoid(theta), shaped like the inputs [B, ...].</param>
/// <param name="NoiseMean">mu_G, [B, ...] shaped like the input statistics (per channel for images).</param>
/// <param name="NoiseStd">sigma_G, likewise.</param>
/// <param name="Wasserstein">The critic's estimate mean D(real) - mean D(fake) at every critic step, [steps, B].</param>
public sealed record InputMaskFit(Tensor Mask, Tensor NoiseMean, Tensor NoiseStd, Tensor Wasserstein) : IDisposable
{
    public void Dispose()
    {
        Mask.Dispose();
        NoiseMean.Dispose();
        NoiseStd.Dispose();
        Wasserstein.Dispose();
    }
}

/// <summary>
/// InputIBA's second stage (Zhang et al. 2021, Sec. 3.3, Eq. 3): a Wasserstein GAN (Arjovsky et al. 2017) whose
/// generator is the input bottleneck Z_G = lambda_G x + (1 - lambda_G) eps_G, eps_G = mu_G + sigma_G z, z ~ N(0, 1)
/// (reparametrised; learnable: the mask logits theta, lambda_G = sigmoid(theta), one per input element, and mu_G, sigma_G
/// shaped like the input statistics, i.e. per channel for images), pushed through the network up to the stage, f(Z_G);
/// its target is the stage-1 bottleneck's feature distribution P(Z*), Z* = lambda* R + (1 - lambda*) eps,
/// eps ~ N(mu_R, sigma_R^2), R = f(x) (times the active-unit mask, exactly as the feature bottleneck passes it).
/// <para>Paper: 20 epochs, RMSProp at 5e-5 (the critic's). Silent in the paper, taken from the reference code: 200 target
/// samples an epoch in batches of 32, 5 critic steps per generator step, weight clipping at 0.01, the generator's
/// RMSProp learning rates (mask logits 0.003, noise mean 0.1, noise std 0.05). Deliberate differences: the target
/// samples are the paper's Z* with lambda* and the bottleneck's own noise N(mu_R, sigma_R^2) — the reference feeds the
/// stage-1 capacity (KL, nats) where lambda* belongs and noise N(m, s^2) with m ~ U(-2, 2), s ~ U(0, 5) per block of 20;
/// target samples are drawn afresh for every batch (an endless sample of P(Z*) rather than a fixed set of 200);
/// the generator steps after every 5th critic step counted over the whole run (the reference counts within an epoch);
/// the critic is our small one (<see cref="FeatureCritic"/>, no batch normalisation), initialised in [-clip, clip]; on text
/// features [T, H] it convolves along the positions where the reference's text critic is an LSTM over them.</para>
/// Several inputs are fitted together, each with its own generator parameters and its own critic in shared tensors:
/// every step is one forward (and one backward) pass over B x BatchSize samples.
/// </summary>
public sealed class InputMaskGan
{
    public InputMaskGan(int epochs = 20, int datasetSize = 200, int batchSize = 32, int criticIterations = 5,
                        double criticLearningRate = 5e-5, double weightClip = 0.01, double maskLearningRate = 0.003,
                        double noiseMeanLearningRate = 0.1, double noiseStdLearningRate = 0.05, int criticWidth = 32)
    {
        if (epochs < 0) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "input_iba: the WGAN's epochs must be >= 0 (0: lambda_G stays at its initialisation)");
        if (datasetSize < 1) throw new ArgumentOutOfRangeException(nameof(datasetSize), datasetSize, "input_iba: at least one target sample an epoch");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "input_iba: the WGAN's batch size must be >= 1");
        if (criticIterations < 1) throw new ArgumentOutOfRangeException(nameof(criticIterations), criticIterations, "input_iba: at least one critic step per generator step");
        foreach (var (name, value) in new[] { (nameof(criticLearningRate), criticLearningRate), (nameof(weightClip), weightClip), (nameof(maskLearningRate), maskLearningRate),
                                               (nameof(noiseMeanLearningRate), noiseMeanLearningRate), (nameof(noiseStdLearningRate), noiseStdLearningRate) })
            if (!(value > 0) || double.IsInfinity(value)) throw new ArgumentOutOfRangeException(name, value, $"input_iba: {name} must be finite and > 0");
        if (criticWidth < 1) throw new ArgumentOutOfRangeException(nameof(criticWidth), criticWidth, "input_iba: the critic needs at least one hidden unit");
        Epochs = epochs; DatasetSize = datasetSize; BatchSize = batchSize; CriticIterations = criticIterations;
        CriticLearningRate = criticLearningRate; WeightClip = weightClip; MaskLearningRate = maskLearningRate;
        NoiseMeanLearningRate = noiseMeanLearningRate; NoiseStdLearningRate = noiseStdLearningRate; CriticWidth = criticWidth;
    }

    public int Epochs { get; }
    public int DatasetSize { get; }
    public int BatchSize { get; }
    public int CriticIterations { get; }
    public double CriticLearningRate { get; }
    public double WeightClip { get; }
    public double MaskLearningRate { get; }
    public double NoiseMeanLearningRate { get; }
    public double NoiseStdLearningRate { get; }
    public int CriticWidth { get; }

    /// <summary>Critic steps in a run: epochs x ceil(DatasetSize / BatchSize).</summary>
    public int CriticSteps => Epochs * ((DatasetSize + BatchSize - 1) / BatchSize);

    public string Describe() =>
        $"WGAN {Epochs} epochs of {DatasetSize} target samples in batches of {BatchSize}, {CriticIterations} critic steps per generator step, " +
        $"RMSProp critic lr {CriticLearningRate}, weight clip {WeightClip}, generator lr mask {MaskLearningRate} / noise mean {NoiseMeanLearningRate} / noise std {NoiseStdLearningRate}, critic width {CriticWidth}";

    /// <summary>
    /// Fits lambda_G for the inputs <paramref name="x"/> [B, ...] together. <paramref name="featureMask"/>: lambda* [B, ...]
    /// of the stage-1 bottleneck after <paramref name="stage"/>, whose noise statistics are <paramref name="featureNoise"/>;
    /// <paramref name="inputNoise"/> starts mu_G and sigma_G; <paramref name="initialLogits"/> [B, ...] starts theta.
    /// Input i draws everything (critic initialisation, target noise, z) from <paramref name="generators"/>[i].
    /// The caller freezes the model's parameters.
    /// </summary>
    public InputMaskFit Fit(ILayeredModel model, string stage, Tensor x, Tensor featureMask, ActivationStatistics featureNoise,
                            InputStatistics inputNoise, Tensor initialLogits, Generator[] generators)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0];
        if (generators.Length != n) throw new ArgumentException($"input_iba: {generators.Length} generators for {n} inputs");
        x = x.detach();
        var inputShape = x.shape.Skip(1).ToArray();
        Tensor r;
        using (no_grad()) r = model.ForwardTo(stage, x).detach();
        var featureShape = r.shape.Skip(1).ToArray();
        if (!featureMask.shape.SequenceEqual(r.shape))
            throw new ArgumentException($"input_iba: the feature mask [{string.Join(", ", featureMask.shape)}] must be shaped like the activation after '{stage}' [{string.Join(", ", r.shape)}]");
        var lambdaStar = featureMask.detach().to(r.dtype, r.device);
        var featureMean = featureNoise.Mean.to(r.dtype, r.device);
        var featureStd = featureNoise.Std.to(r.dtype, r.device);
        var active = featureNoise.Active.to(r.dtype, r.device);
        var inputMean = inputNoise.Mean.to(x.dtype, x.device);
        var inputStd = inputNoise.Std.to(x.dtype, x.device);
        var statShape = new[] { n }.Concat(Broadcast(inputMean.shape, inputShape.Length)).ToArray();

        var theta = new Parameter(initialLogits.detach().to(x.dtype, x.device).clone(), requires_grad: true);
        var mu = new Parameter(inputMean.expand(statShape).clone(), requires_grad: true);
        var sigma = new Parameter(inputStd.expand(statShape).clone(), requires_grad: true);
        // Text models' per-position stages give [T, H]: that critic convolves along the positions (FeatureCritic).
        bool sequence = InputLayouts.Of(model, x) == InputLayout.TokenSequence && featureShape.Length == 2;
        using var critic = new FeatureCritic(featureShape, CriticWidth, WeightClip, generators, r.dtype, r.device, sequence);
        using var criticOptimiser = optim.RMSProp(critic.Parameters, lr: CriticLearningRate);
        // RMSProp is element-wise: one optimiser per parameter with its own rate is the reference's three parameter groups.
        using var maskOptimiser = optim.RMSProp([theta], lr: MaskLearningRate);
        using var meanOptimiser = optim.RMSProp([mu], lr: NoiseMeanLearningRate);
        using var stdOptimiser = optim.RMSProp([sigma], lr: NoiseStdLearningRate);

        var realNoiseShape = new[] { (long)BatchSize }.Concat(featureShape).ToArray();
        var zShape = new[] { (long)BatchSize }.Concat(inputShape).ToArray();
        var trace = new List<Tensor>();
        int stepsPerEpoch = (DatasetSize + BatchSize - 1) / BatchSize;
        int step = 0;
        for (int epoch = 0; epoch < Epochs; epoch++)
        {
            for (int batch = 0; batch < stepsPerEpoch; batch++, step++)
            {
                using var stepScope = NewDisposeScope();
                // Target samples [S, B, ...]: Z* = lambda* R + (1 - lambda*) eps, as the stage-1 bottleneck passes them.
                var eps = stack(generators.Select(g => randn(realNoiseShape, r.dtype, r.device, generator: g)).ToList(), 1) * featureStd + featureMean;
                var real = (lambdaStar * r + (1 - lambdaStar) * eps) * active;
                var z = stack(generators.Select(g => randn(zShape, x.dtype, x.device, generator: g)).ToList(), 1);

                criticOptimiser.zero_grad();
                Tensor fake;
                using (no_grad()) fake = Generate(model, stage, x, theta, mu, sigma, z);
                var realScore = critic.Score(real).mean([0L]);
                var fakeScore = critic.Score(fake).mean([0L]);
                var criticLoss = (fakeScore - realScore).sum();           // a sum over inputs: independent critics
                criticLoss.backward();
                criticOptimiser.step();
                critic.Clip(WeightClip);
                trace.Add((realScore - fakeScore).detach().MoveToOuterDisposeScope());

                if ((step + 1) % CriticIterations != 0) continue;
                maskOptimiser.zero_grad(); meanOptimiser.zero_grad(); stdOptimiser.zero_grad();
                var generated = Generate(model, stage, x, theta, mu, sigma, z);
                var generatorLoss = -critic.Score(generated).mean([0L]).sum();
                generatorLoss.backward();
                maskOptimiser.step(); meanOptimiser.step(); stdOptimiser.step();
                foreach (var p in critic.Parameters) p.grad?.zero_();
            }
        }
        using var noGrad = no_grad();
        var wasserstein = trace.Count > 0 ? stack(trace, 0) : zeros(0, n, dtype: r.dtype, device: r.device);
        var fit = new InputMaskFit(sigmoid(theta).MoveToOuterDisposeScope(), mu.detach().clone().MoveToOuterDisposeScope(),
                                   sigma.detach().clone().MoveToOuterDisposeScope(), wasserstein.MoveToOuterDisposeScope());
        theta.Dispose(); mu.Dispose(); sigma.Dispose();
        return fit;
    }

    /// <summary>f(Z_G) [S, B, ...] for z [S, B, ...input]: the masked inputs of all samples go through the network in one pass.</summary>
    static Tensor Generate(ILayeredModel model, string stage, Tensor x, Tensor theta, Tensor mu, Tensor sigma, Tensor z)
    {
        using var scope = NewDisposeScope();
        long s = z.shape[0], n = z.shape[1];
        var lambda = sigmoid(theta);
        var masked = lambda * x + (1 - lambda) * (sigma * z + mu);                // broadcast over the S samples
        var features = model.ForwardTo(stage, masked.reshape(new[] { s * n }.Concat(x.shape.Skip(1)).ToArray()));
        return features.reshape(new[] { s, n }.Concat(features.shape.Skip(1)).ToArray()).MoveToOuterDisposeScope();
    }

    /// <summary>The statistics' shape left-padded with 1s to the input's rank.</summary>
    static long[] Broadcast(long[] statShape, int rank)
    {
        if (statShape.Length > rank) throw new ArgumentException($"input_iba: input statistics shaped [{string.Join(", ", statShape)}] do not broadcast against inputs of rank {rank}");
        return Enumerable.Repeat(1L, rank - statShape.Length).Concat(statShape).ToArray();
    }
}
