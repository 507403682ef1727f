using Attribution.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Information Bottleneck Attribution, per-sample bottleneck (Schulz et al. 2020, "Restricting the flow", Sec. 3;
/// background of InputIBA, Zhang et al. 2021, Sec. 3.1, Eq. 1 and 4). At a stage with activation R = ForwardTo(stage, x)
/// the bottleneck is Z = lambda R + (1 - lambda) eps, eps ~ N(mu_R, sigma_R^2) (per-element statistics over reference
/// inputs, <see cref="ActivationStatistics"/>), lambda = G_sigma * sigmoid(alpha) (a depthwise Gaussian blur of the mask,
/// reflection padding). alpha [K, h, w] per input minimises
/// <code>L = CE(ForwardFrom(stage, Z), target) + beta * mean_k KL_k</code>
/// with the per-element capacity, Q(Z|R) = N(lambda R + (1 - lambda) mu_R, (1 - lambda)^2 sigma_R^2) against
/// Q(Z) = N(mu_R, sigma_R^2), in closed form (r = (R - mu_R) / sigma_R):
/// <code>KL_k = ( lambda^2 r^2 + (1 - lambda)^2 - 1 - ln (1 - lambda)^2 ) / 2   [nats]</code>
/// The CE is averaged over <see cref="Copies"/> noisy copies of the input (fresh eps every step). Adam over alpha only;
/// the model's parameters are not differentiated (their requires_grad is off during the call and restored).
/// The map is sum_k KL_k / ln 2 (bits) for the final alpha, upsampled bilinearly (align_corners false) to the
/// input's height and width and given to every input channel. Diagnostic <c>capacity_bits</c>: mean_k KL_k / ln 2.
/// On text (a <see cref="TextModel"/> or its view, <see cref="InputLayout.TokenSequence"/>) the stage is a per-position
/// one and a word's score is its position's capacity in bits (see <c>TokenChunk</c>).
/// <para>Defaults are the reference implementation's: beta 10, 10 Adam steps at learning rate 1, alpha_0 = 5,
/// smoothing sigma 1 (kernel 2 round(2 sigma) + 1), 10 copies; the paper's stage conv4_1 of VGG-16 becomes
/// <see cref="DefaultStage"/>. The output function of <see cref="ExplainOptions"/> is not used (the loss is a CE on logits).</para>
/// Inputs are optimised together, each with its own alpha and its own noise generator (from (Seed, InputKeys[i])):
/// the loss is a sum over inputs, and Adam is element-wise, so an input's map does not depend on its batch.
/// One forward and backward pass per step per chunk of BatchSize / Copies inputs (BatchSize counts points).
/// </summary>
public sealed class InformationBottleneck : IAttributionMethod
{
    /// <summary>
    /// conv2 of <see cref="FashionCnn"/>: its deepest convolution (after ReLU), 8x8 for 28x28 inputs. The paper puts the
    /// bottleneck deep (conv4_1 of VGG-16) because the Gaussian Q(Z) overestimates I[R, Z] on early layers.
    /// </summary>
    public const string DefaultStage = "conv2";

    public InformationBottleneck(ActivationStatistics statistics, double beta = 10.0, int steps = 10, double learningRate = 1.0,
                                 double initialAlpha = 5.0, double sigma = 1.0, int copies = 10)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        if (!(beta >= 0) || double.IsInfinity(beta)) throw new ArgumentOutOfRangeException(nameof(beta), beta, "information_bottleneck: beta must be finite and >= 0");
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "information_bottleneck: at least one optimisation step");
        if (!(learningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "information_bottleneck: the learning rate must be > 0");
        if (double.IsNaN(initialAlpha) || double.IsInfinity(initialAlpha)) throw new ArgumentOutOfRangeException(nameof(initialAlpha), initialAlpha, "information_bottleneck: alpha_0 must be finite");
        if (!(sigma >= 0) || double.IsInfinity(sigma)) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "information_bottleneck: the smoothing sigma must be finite and >= 0 (0: no smoothing)");
        if (copies < 1) throw new ArgumentOutOfRangeException(nameof(copies), copies, "information_bottleneck: at least one noisy copy");
        Statistics = statistics; Beta = beta; Steps = steps; LearningRate = learningRate;
        InitialAlpha = initialAlpha; Sigma = sigma; Copies = copies;
    }

    public ActivationStatistics Statistics { get; }
    public string Stage => Statistics.Stage;
    public double Beta { get; }
    public int Steps { get; }
    public double LearningRate { get; }
    public double InitialAlpha { get; }
    public double Sigma { get; }
    public int Copies { get; }

    public string Describe() =>
        $"information_bottleneck: per-sample bottleneck after '{Stage}', beta {Beta}, {Steps} Adam steps at lr {LearningRate}, " +
        $"alpha_0 {InitialAlpha}, mask smoothing sigma {Sigma}, {Copies} noisy copies, capacity summed over channels in bits, bilinear upsampling";

    /// <summary>
    /// mu_R and sigma_R (unbiased, at least <paramref name="minStd"/>) per element of the activation after
    /// <paramref name="stage"/>, over <paramref name="referenceInputs"/> [N, ...], N &gt;= 2, in chunks of
    /// <paramref name="batchSize"/>; accumulated in float64, returned in the activation's dtype and device.
    /// </summary>
    public static ActivationStatistics EstimateActivationStatistics(nn.Module<Tensor, Tensor> model, string stage, Tensor referenceInputs,
                                                                    int batchSize = 256, double minStd = 0.01)
    {
        var layered = Layered(model, stage);
        if (referenceInputs.shape.Length < 1 || referenceInputs.shape[0] < 2)
            throw new ArgumentException($"information_bottleneck: at least 2 reference inputs are needed to estimate sigma_R, got shape [{string.Join(", ", referenceInputs.shape)}]");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be at least 1");
        model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long n = referenceInputs.shape[0];
        Tensor? sum = null, sumSquares = null, positive = null;
        ScalarType dtype = ScalarType.Float32;
        for (long start = 0; start < n; start += batchSize)
        {
            using var chunkScope = NewDisposeScope();
            var r = layered.ForwardTo(stage, referenceInputs.narrow(0, start, Math.Min(batchSize, n - start)));
            dtype = r.dtype;
            var r64 = r.to(ScalarType.Float64);
            var s = r64.sum(0L); var q = r64.square().sum(0L); var p = r.ne(0).to(ScalarType.Float64).sum(0L);
            sum = (sum is null ? s : sum + s).MoveToOuterDisposeScope();
            sumSquares = (sumSquares is null ? q : sumSquares + q).MoveToOuterDisposeScope();
            positive = (positive is null ? p : positive + p).MoveToOuterDisposeScope();
        }
        var mean = sum! / n;
        var variance = ((sumSquares! - mean.square() * n) / (n - 1)).clamp_min(0.0);
        var std = variance.sqrt().clamp_min(minStd);
        var active = (positive! / n).gt(0.01).to(dtype);
        return new ActivationStatistics(stage, mean.to(dtype).MoveToOuterDisposeScope(), std.to(dtype).MoveToOuterDisposeScope(),
                                        active.MoveToOuterDisposeScope(), n);
    }

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        var layered = Layered(model, Stage);
        var layout = InputLayouts.Of(model, inputs);
        if (layout != InputLayout.TokenSequence) PerturbationEngine.CheckImages(inputs, "information_bottleneck");
        PerturbationEngine.CheckTargets(inputs, targets);
        options.Check();
        model.eval();
        long count = inputs.shape[0];
        var keys = options.Keys(count);
        long perChunk = Math.Max(1, options.PointsPerChunk(inputs) / Copies);
        // The parameters are constants of the optimisation: no gradient is built for them, and Adam never sees them.
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        foreach (var p in parameters) p.requires_grad = false;
        try
        {
            using var scope = NewDisposeScope();
            var maps = new List<Tensor>();
            var bits = new List<Tensor>();
            for (long start = 0; start < count; start += perChunk)
            {
                long n = Math.Min(perChunk, count - start);
                var chunk = inputs.narrow(0, start, n);
                var (map, capacity) = layout == InputLayout.TokenSequence
                    ? TokenChunk(layered, chunk, targets.narrow(0, start, n), keys[(int)start..(int)(start + n)], options)
                    : Chunk(layered, chunk, targets.narrow(0, start, n), keys[(int)start..(int)(start + n)], options);
                maps.Add(map); bits.Add(capacity);
            }
            var all = cat(maps, 0).expand(inputs.shape).to(inputs.dtype).contiguous();
            var diagnostics = new Dictionary<string, Tensor> { ["capacity_bits"] = cat(bits, 0).MoveToOuterDisposeScope() };
            return new Explanation(all.MoveToOuterDisposeScope(), diagnostics);
        }
        finally
        {
            foreach (var p in parameters) p.requires_grad = true;
        }
    }

    (Tensor Map, Tensor CapacityBits) Chunk(ILayeredModel model, Tensor x, Tensor targets, long[] keys, ExplainOptions options)
    {
        using var scope = NewDisposeScope();
        long height = x.shape[2], width = x.shape[3];
        var (_, capacityNats) = FitChunk(model, x, targets, keys, options);
        if (capacityNats.dim() != 4)
            throw new ArgumentException($"information_bottleneck: the activation after '{Stage}' must be a feature map [B, K, h, w], got [{string.Join(", ", capacityNats.shape)}]");
        var final = capacityNats / Math.Log(2.0);
        var map = nn.functional.interpolate(final.sum(1, keepdim: true), [height, width], mode: InterpolationMode.Bilinear, align_corners: false);
        var bits = final.mean([1L, 2L, 3L]);
        return (map.MoveToOuterDisposeScope(), bits.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Text (<see cref="InputLayout.TokenSequence"/>): the bottleneck on a per-position stage [B, T, H] (no blur: the
    /// reference's text setting, sigma 0), a word's bits = the capacity summed over the H units of its position. The map
    /// spreads them evenly over the word's embedding coordinates, so that <see cref="TokenScores"/> (the sum over the
    /// coordinates) gives the word exactly its bits. For the CNN's stage, position t holds the windows that start at t.
    /// </summary>
    (Tensor Map, Tensor CapacityBits) TokenChunk(ILayeredModel model, Tensor x, Tensor targets, long[] keys, ExplainOptions options)
    {
        using var scope = NewDisposeScope();
        var (_, capacityNats) = FitChunk(model, x, targets, keys, options);
        if (capacityNats.dim() != 3 || capacityNats.shape[1] != x.shape[1])
            throw new ArgumentException($"information_bottleneck: on text the activation after '{Stage}' must be per position [B, T = {x.shape[1]}, H], got [{string.Join(", ", capacityNats.shape)}]; choose a per-position stage");
        var final = capacityNats / Math.Log(2.0);
        var map = TokenScores.Spread(final.sum(2), x);                                          // a word: its position's bits
        return (map.MoveToOuterDisposeScope(), final.mean([1L, 2L]).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The optimised bottleneck of each input of the chunk <paramref name="x"/> (optimised together): lambda*
    /// [B, K, h, w] (times the active mask: inactive elements pass nothing) and the capacity KL_k in nats per element
    /// (0 where inactive). InputIBA's first stage (<see cref="InputIba"/>) reads lambda* here. Input i's noise comes
    /// from <paramref name="options"/>' generator for <paramref name="keys"/>[i], as in <see cref="Explain"/>; the
    /// caller has switched off the model parameters' requires_grad. Activations of any shape [B, ...] (the Gaussian
    /// blur of the mask only on feature maps [B, K, h, w]); <see cref="Explain"/> itself needs feature maps.
    /// </summary>
    internal (Tensor Lambda, Tensor CapacityNats) FitChunk(ILayeredModel model, Tensor x, Tensor targets, long[] keys, ExplainOptions options)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0];
        Tensor r;
        using (no_grad()) r = model.ForwardTo(Stage, x).detach();
        if (!r.shape.Skip(1).SequenceEqual(Statistics.Mean.shape))
            throw new ArgumentException($"information_bottleneck: the statistics of '{Stage}' are shaped [{string.Join(", ", Statistics.Mean.shape)}], the activation [{string.Join(", ", r.shape.Skip(1))}]; estimate them on this model");
        var mean = Statistics.Mean.to(r.dtype, r.device);
        var std = Statistics.Std.to(r.dtype, r.device);
        var active = Statistics.Active.to(r.dtype, r.device);
        var normalised = (r - mean) / std;
        var repeated = r.repeat_interleave(Copies, 0);                       // input i's copies are rows i*m .. i*m+m-1
        var repeatedTargets = targets.repeat_interleave(Copies);
        var kernel = r.dim() == 4 ? MaskSmoothing.For(Sigma) : null;   // other shapes (InputIBA on text): no blur
        var generators = keys.Select(k => options.GeneratorFor(k, r.device)).ToArray();
        try
        {
            var alpha = new Parameter(full(r.shape, InitialAlpha, r.dtype, r.device), requires_grad: true);
            using var adam = optim.Adam([alpha], lr: LearningRate);
            var noiseShape = new[] { (long)Copies }.Concat(r.shape.Skip(1)).ToArray();
            for (int step = 0; step < Steps; step++)
            {
                using var stepScope = NewDisposeScope();
                adam.zero_grad();
                var lambda = Mask(alpha, kernel);
                var capacity = Capacity(normalised, lambda) * active;
                var eps = cat(generators.Select(g => randn(noiseShape, r.dtype, r.device, generator: g)).ToList(), 0) * std + mean;
                var lambdas = lambda.repeat_interleave(Copies, 0);
                var z = (lambdas * repeated + (1 - lambdas) * eps) * active;
                var logits = model.ForwardFrom(Stage, z);
                var ce = nn.functional.cross_entropy(logits, repeatedTargets, reduction: nn.Reduction.None).view(n, Copies).mean([1L]);
                var loss = (ce + Beta * capacity.flatten(1).mean([1L])).sum();   // a sum over inputs: independent gradients
                loss.backward();
                adam.step();
            }
            using var noGrad = no_grad();
            var lambdaFinal = Mask(alpha, kernel);
            var capacityFinal = Capacity(normalised, lambdaFinal) * active;
            var passed = lambdaFinal * active;
            alpha.Dispose();
            return (passed.MoveToOuterDisposeScope(), capacityFinal.MoveToOuterDisposeScope());
        }
        finally
        {
            foreach (var g in generators) g.Dispose();
        }
    }

    /// <summary>KL(N(lambda r, (1 - lambda)^2) || N(0, 1)) per element, r standardised (the KL is invariant to it).</summary>
    static Tensor Capacity(Tensor normalised, Tensor lambda)
    {
        // 1 - lambda is kept >= 1e-6 so that a saturated sigmoid (alpha > ~17 in float32) gives a large, finite KL.
        var varianceZ = (1 - lambda).clamp_min(1e-6).square();
        return 0.5 * ((lambda * normalised).square() + varianceZ - 1 - varianceZ.log());
    }

    /// <summary>lambda = G_sigma * sigmoid(alpha): depthwise Gaussian blur of the mask with reflection padding.</summary>
    static Tensor Mask(Tensor alpha, MaskSmoothing.Kernel? kernel) => MaskSmoothing.Apply(sigmoid(alpha), kernel);

    static ILayeredModel Layered(nn.Module<Tensor, Tensor> model, string stage)
    {
        if (model is not ILayeredModel layered)
            throw new ArgumentException($"information_bottleneck needs a model that can be cut at a named stage (Attribution.Models.ILayeredModel); {model.GetType().Name} is not one");
        if (!layered.Stages.Contains(stage))
            throw new ArgumentException($"information_bottleneck: unknown stage '{stage}'; the model's stages: {string.Join(", ", layered.Stages)}");
        return layered;
    }
}
