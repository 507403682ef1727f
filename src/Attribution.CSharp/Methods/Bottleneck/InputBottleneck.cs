using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// InputIBA's third stage (Zhang et al. 2021, Sec. 3.2, Remarks 1-2, Proposition 3): a bottleneck on the input itself,
/// Z_I = Lambda x + (1 - Lambda) eps, eps ~ N(mu_I, sigma_I^2) (<see cref="InputStatistics"/>), whose prior is not
/// N(mu_I, sigma_I^2) but the distribution the stage-2 generator's mask lambda_G induces,
/// P(Z_I) = N(lambda_G Lambda x + (1 - lambda_G Lambda) mu_I, (1 - lambda_G Lambda)^2 sigma_I^2). Lambda = G_sigma * sigmoid(alpha)
/// (the Gaussian blur over height and width for image inputs [B, C, H, W]; no blur for text, <see cref="InputLayout.TokenSequence"/>,
/// nor for other shapes), alpha one per input element, minimises
/// <code>L = CE(model(Z_I), target) + beta * mean_k KL_k</code>
/// with KL_k the closed form of Proposition 3 (<see cref="Capacity"/>); the CE is averaged over <see cref="Copies"/>
/// noisy copies (fresh eps every step); Adam over alpha. Inputs of any shape [B, ...] (text: the embeddings [B, T, E]).
/// <para>Defaults are the paper's (beta_input 20, 60 iterations) and, where it is silent, the reference code's
/// (Adam at learning rate 1, alpha_0 = 5, sigma 1, 10 copies). With lambda_G = 0 the prior is N(mu_I, sigma_I^2) and this is
/// IBA placed on the input: <see cref="Explain"/> does that, <see cref="Fit"/> takes the prior mask.</para>
/// </summary>
public sealed class InputBottleneck : IAttributionMethod
{
    public InputBottleneck(InputStatistics noise, double beta = 20.0, int steps = 60, double learningRate = 1.0,
                           double initialAlpha = 5.0, double sigma = 1.0, int copies = 10)
    {
        ArgumentNullException.ThrowIfNull(noise);
        if (!(beta >= 0) || double.IsInfinity(beta)) throw new ArgumentOutOfRangeException(nameof(beta), beta, "input_bottleneck: beta must be finite and >= 0");
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "input_bottleneck: at least one optimisation step");
        if (!(learningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "input_bottleneck: the learning rate must be > 0");
        if (double.IsNaN(initialAlpha) || double.IsInfinity(initialAlpha)) throw new ArgumentOutOfRangeException(nameof(initialAlpha), initialAlpha, "input_bottleneck: alpha_0 must be finite");
        if (!(sigma >= 0) || double.IsInfinity(sigma)) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "input_bottleneck: the smoothing sigma must be finite and >= 0 (0: no smoothing)");
        if (copies < 1) throw new ArgumentOutOfRangeException(nameof(copies), copies, "input_bottleneck: at least one noisy copy");
        Noise = noise; Beta = beta; Steps = steps; LearningRate = learningRate; InitialAlpha = initialAlpha; Sigma = sigma; Copies = copies;
    }

    public InputStatistics Noise { get; }
    public double Beta { get; }
    public int Steps { get; }
    public double LearningRate { get; }
    public double InitialAlpha { get; }
    public double Sigma { get; }
    public int Copies { get; }

    public string Describe() =>
        $"input_bottleneck: bottleneck on the input, beta {Beta}, {Steps} Adam steps at lr {LearningRate}, alpha_0 {InitialAlpha}, " +
        $"mask smoothing sigma {Sigma} (images; text masks are not smoothed), {Copies} noisy copies, prior N(mu_I, sigma_I^2) (lambda_G = 0), capacity in bits";

    /// <summary>
    /// Proposition 3, per element: KL( N(Lambda x + (1 - Lambda) mu, (1 - Lambda)^2 s^2) || N(lambda_G Lambda x + (1 - lambda_G Lambda) mu, (1 - lambda_G Lambda)^2 s^2) )
    /// = ln((1 - lambda_G Lambda) / (1 - Lambda)) + (1 - Lambda)^2 / (2 (1 - lambda_G Lambda)^2) + (x - mu)^2 (Lambda - lambda_G Lambda)^2 / (2 (1 - lambda_G Lambda)^2 s^2) - 1/2,
    /// in nats. All arguments broadcast. 1 - Lambda is kept >= 1e-6 so that a saturated mask gives a large, finite KL.
    /// </summary>
    public static Tensor Capacity(Tensor x, Tensor mean, Tensor std, Tensor priorMask, Tensor lambda)
    {
        using var scope = NewDisposeScope();
        var keep = (1 - lambda).clamp_min(1e-6);
        var priorKeep = (1 - priorMask * lambda).clamp_min(1e-6);
        var ratio = keep / priorKeep;
        var shift = (x - mean) * (lambda - priorMask * lambda) / (priorKeep * std);
        return (0.5 * (ratio.square() + shift.square() - 1) - ratio.log()).MoveToOuterDisposeScope();
    }

    /// <summary>IBA on the input (prior mask lambda_G = 0): the map is the capacity in bits (summed over channels for images).</summary>
    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        using var prior = zeros_like(inputs);
        return ExplainWithPrior(model, inputs, targets, prior, options);
    }

    /// <summary>
    /// Fits Lambda for every input with the prior mask <paramref name="priorMask"/> (lambda_G, shaped like
    /// <paramref name="inputs"/>, values in [0, 1]); the map is the capacity in bits, summed over channels and given to
    /// every channel for images [B, C, H, W], per element otherwise (text: per embedding coordinate, <see cref="InputLayouts"/>). Diagnostic <c>capacity_bits</c>: mean over elements.
    /// Chunks of BatchSize / Copies inputs; input i's noise from the generator of (Seed, "input/{key}/input_bottleneck").
    /// </summary>
    public Explanation ExplainWithPrior(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, Tensor priorMask, ExplainOptions options)
    {
        PerturbationEngine.CheckTargets(inputs, targets);
        options.Check();
        if (!priorMask.shape.SequenceEqual(inputs.shape))
            throw new ArgumentException($"input_bottleneck: the prior mask [{string.Join(", ", priorMask.shape)}] must be shaped like the inputs [{string.Join(", ", inputs.shape)}]");
        model.eval();
        long count = inputs.shape[0];
        var keys = options.Keys(count);
        var layout = InputLayouts.Of(model, inputs);
        long perChunk = Math.Max(1, options.PointsPerChunk(inputs) / Copies);
        using var frozen = FrozenParameters.Of(model);
        using var scope = NewDisposeScope();
        var maps = new List<Tensor>();
        var bits = new List<Tensor>();
        for (long start = 0; start < count; start += perChunk)
        {
            using var chunkScope = NewDisposeScope();
            long n = Math.Min(perChunk, count - start);
            var generators = keys[(int)start..(int)(start + n)].Select(k => Runtime.Seeds.Generator(options.Seed, $"input/{k}/input_bottleneck", inputs.device)).ToArray();
            try
            {
                var (_, capacity) = Fit(model, inputs.narrow(0, start, n), targets.narrow(0, start, n), priorMask.narrow(0, start, n), generators);
                var inBits = capacity / Math.Log(2.0);
                maps.Add(ToMap(inBits, layout).MoveToOuterDisposeScope());
                bits.Add(inBits.flatten(1).mean([1L]).MoveToOuterDisposeScope());
            }
            finally
            {
                foreach (var g in generators) g.Dispose();
            }
        }
        var diagnostics = new Dictionary<string, Tensor> { ["capacity_bits"] = cat(bits, 0).MoveToOuterDisposeScope() };
        return new Explanation(cat(maps, 0).MoveToOuterDisposeScope(), diagnostics);
    }

    /// <summary>The capacity map of <paramref name="perElement"/> [B, ...]: summed over channels and given to each channel for images, per element otherwise.</summary>
    internal static Tensor ToMap(Tensor perElement, InputLayout layout) =>
        layout == InputLayout.Image ? perElement.sum(1, keepdim: true).expand_as(perElement).contiguous() : perElement.contiguous();

    /// <summary>
    /// Optimises alpha for the inputs <paramref name="x"/> [B, ...] together (the loss is a sum over inputs, Adam is
    /// element-wise: an input's result does not depend on its batch); one forward and one backward pass of B x Copies
    /// points per step. Returns Lambda* and the Proposition-3 capacity (nats), both shaped like <paramref name="x"/>.
    /// Input i draws its noise from <paramref name="generators"/>[i]. The caller freezes the model's parameters.
    /// </summary>
    public (Tensor Lambda, Tensor CapacityNats) Fit(nn.Module<Tensor, Tensor> model, Tensor x, Tensor targets, Tensor priorMask, Generator[] generators)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0];
        if (generators.Length != n) throw new ArgumentException($"input_bottleneck: {generators.Length} generators for {n} inputs");
        x = x.detach();
        var prior = priorMask.detach().to(x.dtype, x.device);
        var mean = Noise.Mean.to(x.dtype, x.device);
        var std = Noise.Std.to(x.dtype, x.device);
        // Only images are blurred: on text the layouts [B, T, E] and [B, T, 1, E] hold the embedding coordinates in the
        // last axis, and a blur there would mix coordinates of one word (the reference's text setting has sigma 0).
        var kernel = InputLayouts.Of(model, x) == InputLayout.Image ? MaskSmoothing.For(Sigma) : null;
        var repeated = x.repeat_interleave(Copies, 0);
        var repeatedTargets = targets.repeat_interleave(Copies);
        var noiseShape = new[] { (long)Copies }.Concat(x.shape.Skip(1)).ToArray();
        var alpha = new Parameter(full(x.shape, InitialAlpha, x.dtype, x.device), requires_grad: true);
        using (var adam = optim.Adam([alpha], lr: LearningRate))
        {
            for (int step = 0; step < Steps; step++)
            {
                using var stepScope = NewDisposeScope();
                adam.zero_grad();
                var lambda = MaskSmoothing.Apply(sigmoid(alpha), kernel);
                var capacity = Capacity(x, mean, std, prior, lambda);
                var eps = cat(generators.Select(g => randn(noiseShape, x.dtype, x.device, generator: g)).ToList(), 0) * std + mean;
                var lambdas = lambda.repeat_interleave(Copies, 0);
                var z = lambdas * repeated + (1 - lambdas) * eps;
                var ce = nn.functional.cross_entropy(model.forward(z), repeatedTargets, reduction: nn.Reduction.None).view(n, Copies).mean([1L]);
                var loss = (ce + Beta * capacity.flatten(1).mean([1L])).sum();
                loss.backward();
                adam.step();
            }
        }
        using var noGrad = no_grad();
        var final = MaskSmoothing.Apply(sigmoid(alpha), kernel);
        var finalCapacity = Capacity(x, mean, std, prior, final);
        alpha.Dispose();
        return (final.MoveToOuterDisposeScope(), finalCapacity.MoveToOuterDisposeScope());
    }
}
