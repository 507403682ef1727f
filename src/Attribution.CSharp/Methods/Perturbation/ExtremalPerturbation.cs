using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>What the extremal mask maximises (TorchRay's <c>reward_func</c>).</summary>
public enum ExtremalReward
{
    /// <summary>The target's logit (TorchRay's <c>simple_reward</c>, its default).</summary>
    Logit,
    /// <summary>The target's logit minus the largest other logit (TorchRay's <c>contrastive_reward</c>).</summary>
    Contrastive,
}

/// <summary>
/// Extremal Perturbations, the preservation game (Fong, Patrick and Vedaldi, ICCV 2019, Eq. 4-6), as TorchRay's
/// <c>extremal_perturbation</c>: the mask m of area a that keeps the target's score highest when the rest of the image
/// is blurred,
/// <code>m_a = argmax_m  Phi(m (x) x)  -  lambda || vecsort(m) - r_a ||^2 / N,</code>
/// where m (x) x is the blur-pyramid perturbation (<see cref="BlurPyramid"/>: m = 1 keeps a pixel, m = 0 blurs it by
/// sigma_max), m is the smooth max-convolution of a low-resolution grid (<see cref="SmoothMask"/>), Phi the reward
/// (<see cref="ExtremalReward"/>, the logit by default), and r_a the sorted target mask: (1 - a) N zeros, then ones
/// (the ranking area constraint, Eq. 6). The grid starts at 1 and is optimised by SGD with momentum (lr 0.01,
/// momentum 0.9, dampening 0.9), clamped to [0, 1] after every step; lambda starts at 300 and grows by 1.0035 per
/// iteration (so the constraint hardens), for 800 iterations; on even iterations the perturbed image is flipped left
/// to right (TorchRay's <c>jitter</c>). The map is the optimised mask [0, 1] at the input's resolution, given to every
/// input channel. Diagnostics per input: <c>reward</c> (Phi at the final mask, unflipped) and <c>mask_area</c> (its mean).
/// <para>Sizes scale with the image: TorchRay's step 7, sigma 21 and sigma_max 20 are for 224-pixel images, so by
/// default step = max(1, round(7 S / 224)), sigma = 21 S / 224 and sigma_max = max(20 S / 224, L - 1) with S = min(H, W):
/// step 1, sigma 2.625, sigma_max 7 at 28 px; step 2, sigma 5.25, sigma_max 7 at 56 px. The floor L - 1 keeps the finest
/// blur level sigma_max / (L - 1) at least a pixel (TorchRay's is 2.9 px at 224): scaled to 2.5 at 28 px, the finest
/// level was sigma 0.36 px, a sampled Gaussian with centre weight 0.96, so the reward had almost no gradient while the
/// mask lay in [6/7, 1], where it starts, and the area term fixed the ranking before the reward could act.</para>
/// <para>The area term sorts TorchRay's whole padded canvas (<see cref="SmoothMask.GenerateWithMargin"/>), so the area a
/// is a fraction of the canvas (a 0.1 mask covers 13.5% of a 224-pixel image, 14.7% of a 28-pixel one when it lies
/// inside); <c>mask_area</c> is the mean over the image. Sorting the image alone (as this class once did) made the
/// grid of ones start highest on the image's last column and row, which took the ones of r_a and were never pushed down:
/// every mask ended there, whatever the model.</para>
/// <para>Differences from TorchRay: (1) sigma_max's floor above. (2) The blur pads by
/// replicating the border (<see cref="Metrics.GaussianBlur"/>); TorchRay pads with zeros, which darkens the borders of
/// the substrate (the same on Fashion-MNIST's black borders). (3) The map is the mask of the final parameters; TorchRay
/// returns the mask of the last iteration, one SGD step earlier. (4) One area per call (TorchRay optimises a list of
/// areas together; they do not interact). (5) Preservation only (no deletion or dual game), blur only (no fade). (6) The area term sorts with a stable sort:
/// the grid starts at exactly 1, so the first masks are full of ties, and the order in which they are broken decides
/// which pixels the term pulls up; TorchRay's unstable sort breaks them differently with the batch size and the number
/// of threads (measured: maps differed by 3e-3 after one iteration between a batch of 3 and batches of 1 on 2 threads;
/// with the stable sort by 1e-7).
/// (7) Batched: inputs are optimised together, each with its own grid; the energy is a sum over inputs and SGD is
/// element-wise, so an input's map does not depend on its batch (to float rounding). There is no randomness (the grid
/// starts at 1, the jitter is a fixed flip), so the seed is not used. The model's parameters are not differentiated
/// (their requires_grad is off during the call and restored). The toolkit's <c>output</c> option is not used: the
/// reward is on logits, as in TorchRay, since lambda = 300 is calibrated against logits.</para>
/// <para>Area: TorchRay's default a = 0.1. The InputIBA paper (Zhang et al. 2021) does not state the area of its
/// Extremal Perturbations baseline; we keep TorchRay's default.</para>
/// One forward and one backward pass per iteration per chunk of at most <see cref="ExplainOptions.BatchSize"/> inputs
/// (fewer where the mask tables would outgrow the caches, see <c>MaskElementBudget</c>).
/// </summary>
public sealed class ExtremalPerturbation : IAttributionMethod
{
    /// <summary>The image side TorchRay's step, sigma and sigma_max are meant for.</summary>
    public const int ReferenceSide = 224;

    public ExtremalPerturbation(double area = 0.1, int iterations = 800, double learningRate = 0.01, double momentum = 0.9,
                                double areaWeight = 300.0, double areaWeightGrowth = 1.0035, int levels = 8,
                                int? step = null, double? sigma = null, double? maxBlur = null, bool jitter = true,
                                ExtremalReward reward = ExtremalReward.Logit)
    {
        if (!(area > 0 && area < 1)) throw new ArgumentOutOfRangeException(nameof(area), area, "extremal_perturbation: the area must be in (0, 1)");
        if (iterations < 1) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "extremal_perturbation: at least one iteration");
        if (!(learningRate > 0) || double.IsInfinity(learningRate)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "extremal_perturbation: the learning rate must be finite and > 0");
        if (!(momentum >= 0 && momentum < 1)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "extremal_perturbation: the momentum must be in [0, 1)");
        if (!(areaWeight >= 0) || double.IsInfinity(areaWeight)) throw new ArgumentOutOfRangeException(nameof(areaWeight), areaWeight, "extremal_perturbation: lambda must be finite and >= 0");
        if (!(areaWeightGrowth >= 1) || double.IsInfinity(areaWeightGrowth)) throw new ArgumentOutOfRangeException(nameof(areaWeightGrowth), areaWeightGrowth, "extremal_perturbation: lambda's growth per iteration must be finite and >= 1");
        if (levels < 2) throw new ArgumentOutOfRangeException(nameof(levels), levels, "extremal_perturbation: the blur pyramid needs at least 2 levels");
        if (step is < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "extremal_perturbation: the grid step must be at least 1 pixel");
        if (sigma is double s && (!(s > 0) || double.IsInfinity(s))) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "extremal_perturbation: the mask sigma must be finite and > 0");
        if (maxBlur is double b && (!(b > 0) || double.IsInfinity(b))) throw new ArgumentOutOfRangeException(nameof(maxBlur), maxBlur, "extremal_perturbation: the maximum blur must be finite and > 0");
        Area = area; Iterations = iterations; LearningRate = learningRate; Momentum = momentum;
        AreaWeight = areaWeight; AreaWeightGrowth = areaWeightGrowth; Levels = levels;
        Step = step; Sigma = sigma; MaxBlur = maxBlur; Jitter = jitter; Reward = reward;
    }

    public double Area { get; }
    public int Iterations { get; }
    public double LearningRate { get; }
    public double Momentum { get; }
    public double AreaWeight { get; }
    public double AreaWeightGrowth { get; }
    public int Levels { get; }
    /// <summary>Grid step in pixels; null: scaled from TorchRay's 7 at 224 px.</summary>
    public int? Step { get; }
    /// <summary>Mask smoothing in pixels; null: scaled from TorchRay's 21 at 224 px.</summary>
    public double? Sigma { get; }
    /// <summary>sigma_max of the blur in pixels; null: scaled from TorchRay's 20 at 224 px.</summary>
    public double? MaxBlur { get; }
    public bool Jitter { get; }
    public ExtremalReward Reward { get; }

    /// <summary>The step, sigma and sigma_max used for images of the given size.</summary>
    public (int Step, double Sigma, double MaxBlur) SizesFor(long height, long width)
    {
        double scale = (double)Math.Min(height, width) / ReferenceSide;
        // sigma_max is floored at L - 1 pixels so that the finest blur level, sigma_max / (L - 1), is at least a pixel
        // (TorchRay's is 20 / 7 = 2.9 px): a sampled Gaussian narrower than a pixel is nearly the identity.
        return (Step ?? Math.Max(1, (int)Math.Round(7 * scale, MidpointRounding.ToEven)), Sigma ?? 21 * scale,
                MaxBlur ?? Math.Max(20 * scale, Levels - 1));
    }

    /// <summary>
    /// Elements of the smooth mask's [inputs, pixels, neighbours] intermediates per chunk. On the CPU a chunk that
    /// outgrows the caches costs far more per input: at 56 px (356k elements a mask) one iteration took 15 ms an input
    /// alone, 9 ms in a chunk of 10 and 37 ms in a chunk of 50 (quiet 2-core machine, 2 threads), so chunks stay
    /// near 4M elements (11 inputs at 56 px, about 40 at 28 px); a GPU takes 16 times more.
    /// </summary>
    static long MaskElementBudget(Device device) => device.type == TorchSharp.DeviceType.CUDA ? 1L << 26 : 1L << 22;

    public string Describe() =>
        $"extremal_perturbation: preserve, area {Area}, {Iterations} SGD iterations at lr {LearningRate} (momentum {Momentum}), " +
        $"lambda {AreaWeight} x {AreaWeightGrowth} per iteration, {Levels}-level blur pyramid, " +
        $"step/sigma/sigma_max {(Step?.ToString() ?? "scaled")}/{(Sigma?.ToString() ?? "scaled")}/{(MaxBlur?.ToString() ?? "scaled")}, " +
        $"{(Jitter ? "flip jitter, " : "")}{(Reward == ExtremalReward.Logit ? "logit" : "contrastive")} reward";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        PerturbationEngine.CheckImages(inputs, "extremal_perturbation");
        PerturbationEngine.CheckTargets(inputs, targets);
        options.Check();
        model.eval();
        long count = inputs.shape[0], channels = inputs.shape[1], height = inputs.shape[2], width = inputs.shape[3];
        var (step, sigma, maxBlur) = SizesFor(height, width);
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        foreach (var p in parameters) p.requires_grad = false;
        try
        {
            using var scope = NewDisposeScope();
            using var generator = new SmoothMask(height, width, step, sigma, inputs.device, inputs.dtype);
            var maps = new List<Tensor>();
            var rewards = new List<Tensor>();
            long perChunk = Math.Min(options.BatchSize, Math.Max(1, MaskElementBudget(inputs.device) / generator.ElementsPerMask));
            for (long start = 0; start < count; start += perChunk)
            {
                long n = Math.Min(perChunk, count - start);
                var (map, reward) = Chunk(model, generator, maxBlur, inputs.narrow(0, start, n), targets.narrow(0, start, n).to(inputs.device));
                maps.Add(map); rewards.Add(reward);
            }
            var masks = cat(maps, 0);
            var diagnostics = new Dictionary<string, Tensor>
            {
                ["reward"] = cat(rewards, 0).MoveToOuterDisposeScope(),
                ["mask_area"] = masks.mean([1L, 2L, 3L]).MoveToOuterDisposeScope(),
            };
            var all = masks.expand(count, channels, height, width).contiguous();
            return new Explanation(all.MoveToOuterDisposeScope(), diagnostics);
        }
        finally
        {
            foreach (var p in parameters) p.requires_grad = true;
        }
    }

    (Tensor Mask, Tensor Reward) Chunk(nn.Module<Tensor, Tensor> model, SmoothMask generator, double maxBlur, Tensor x, Tensor targets)
    {
        using var scope = NewDisposeScope();
        // The area term sorts the whole padded canvas, as TorchRay does: sorted over the image alone, the grid of ones
        // starts highest on the image's last column and row (they lack the low neighbours that pull the soft max
        // below 1, and sit 0.375 px past their grid points), so those pixels take the ones of r_a and are never
        // pushed down; on the canvas the margin holds the highest start values and lies outside the image.
        long n = x.shape[0], pixels = generator.PaddedHeight * generator.PaddedWidth;
        using var pyramid = new BlurPyramid(x, Levels, maxBlur);
        // r_a: the sorted mask of exactly area a, floor((1 - a) N) zeros then ones (TorchRay's int() truncation).
        long zerosCount = (long)(pixels * (1 - Area));
        var reference = cat([zeros(zerosCount, x.dtype, x.device), ones(pixels - zerosCount, x.dtype, x.device)], 0).unsqueeze(0);
        var grid = new Parameter(ones(n, 1, generator.GridHeight, generator.GridWidth, x.dtype, x.device), requires_grad: true);
        using var sgd = optim.SGD([grid], LearningRate, momentum: Momentum, dampening: Momentum);
        double lambda = AreaWeight;
        for (int t = 0; t < Iterations; t++)
        {
            using var stepScope = NewDisposeScope();
            sgd.zero_grad();
            var canvas = generator.GenerateWithMargin(grid);
            var perturbed = pyramid.Apply(generator.Window(canvas));
            if (Jitter && t % 2 == 0) perturbed = perturbed.flip(3);
            var reward = RewardOf(model.forward(perturbed), targets);
            // Stable: the grid starts at 1, so the mask starts with exact ties, and the sort order decides which pixels the
            // area term pulls up; an unstable sort breaks ties differently with the batch and thread count.
            var (sorted, _) = canvas.reshape(n, pixels).sort(1, stable: true);
            var regulariser = (sorted - reference).square().mean([1L]) * lambda;
            // Maximise reward - lambda R_a per input; the sum keeps the inputs' gradients apart.
            var loss = (regulariser - reward).sum();
            loss.backward();
            sgd.step();
            using (no_grad()) grid.clamp_(0.0, 1.0);
            lambda *= AreaWeightGrowth;
        }
        using var noGrad = no_grad();
        var final = generator.Generate(grid).contiguous();
        var finalReward = RewardOf(model.forward(pyramid.Apply(final)), targets);
        grid.Dispose();
        return (final.MoveToOuterDisposeScope(), finalReward.MoveToOuterDisposeScope());
    }

    Tensor RewardOf(Tensor logits, Tensor targets)
    {
        var picked = logits.gather(1, targets.unsqueeze(1)).squeeze(1);
        if (Reward == ExtremalReward.Logit) return picked;
        var others = logits.scatter(1, targets.unsqueeze(1), full(targets.shape[0], 1, double.NegativeInfinity, logits.dtype, logits.device));
        return picked - others.max(1).values;
    }
}
