using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Guided Integrated Gradients (Kapishnikov, Venugopalan, Avci, Wedin, Terry, Bolukbasi, CVPR 2021,
/// Algorithm 1), as the authors' PAIR-code <c>saliency</c> library computes it (<c>guided_ig_impl</c>).
/// An adaptive path from the baseline b = 0 to the input x, in N steps; per input, with
/// d = x - b, L = |d|_1, and alpha(z)_i = (z_i - b_i) / d_i (taken as alpha_max where d_i = 0):
/// <code>
/// z = b; A = 0
/// for t = 1..N:
///     g = grad f(z)                                        (one forward and backward pass)
///     alpha = t / N; alpha_min = max(alpha - D, 0); alpha_max = min(alpha + D, 1)
///     z_min = b + alpha_min d; z_max = b + alpha_max d; L_t = L (1 - t / N)
///     repeat:
///         z_old = z
///         z_i = z_min_i where alpha(z)_i &lt; alpha_min          (features that fell behind catch up)
///         l = |z - x|_1
///         if l is close to L_t (|l - L_t| &lt;= max(1e-9 max(l, L_t), 1e-9)): A += (z - z_old) (.) g; next t
///         h_i = |g_i|, or +inf where z_i = z_max_i           (features at the bound are not selected)
///         q = the lower fraction-quantile of h (numpy's interpolation 'lower': the k-th smallest,
///             k = floor(fraction (n - 1)) + 1)
///         S = { i : h_i &lt;= q and h_i finite }                 (the smallest absolute gradients)
///         l_S = sum over S of |z_i - z_max_i|
///         gamma = (l - L_t) / l_S, or +inf if l_S = 0
///         if gamma &gt; 1: z_S = z_max_S, else z_S = z_S + gamma (z_max_S - z_S)
///         A += (z - z_old) (.) g
///     until gamma &lt;= 1
/// </code>
/// So every step removes 1/N of the L1 distance to x, moving the features with the smallest |grad f| first,
/// while no feature leaves the band [alpha - D, alpha + D] around the straight line (D = 0 is IG with a left
/// Riemann sum; D = 1 lets the path go anywhere in the box). The inner loop reuses the step's gradient, so a
/// step is one gradient evaluation. A is a path integral of grad f, so sum_i A_i ~ f(x) - f(b) (exact for
/// linear f, where A = w (.) (x - b) whatever the path).
/// <para>Defaults: the library's <c>x_steps</c> 200, <c>fraction</c> 0.25, <c>max_dist</c> 0.02. The state is
/// kept in float64, as the reference keeps it; the model sees the input's dtype.</para>
/// <para>Batching: the inputs are cut into chunks of <see cref="ExplainOptions.BatchSize"/>; each step is one
/// forward and backward pass of the whole chunk, and the inner loop runs on all rows of the chunk at once
/// (rows that reached their target L1 distance wait). Deterministic: no random draws.</para>
/// </summary>
public sealed class GuidedIntegratedGradients : IAttributionMethod
{
    public GuidedIntegratedGradients(int steps = 200, double fraction = 0.25, double maxDist = 0.02)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "guided_ig: at least one step is needed");
        if (!(fraction > 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "guided_ig: the fraction of features moved per iteration must be in (0, 1]");
        if (!(maxDist >= 0 && maxDist <= 1)) throw new ArgumentOutOfRangeException(nameof(maxDist), maxDist, "guided_ig: max_dist must be in [0, 1]");
        Steps = steps; Fraction = fraction; MaxDist = maxDist;
    }

    public int Steps { get; }
    public double Fraction { get; }
    public double MaxDist { get; }

    const double Epsilon = 1e-9;   // the reference's tolerance on the L1 target

    public string Describe() => $"guided_ig: {Steps} steps from a zero baseline, fraction {Fraction}, max_dist {MaxDist}";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        options.Check();
        PerturbationEngine.CheckTargets(inputs, targets);
        model.eval();
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>();
        long chunk = options.PointsPerChunk(inputs);
        for (long start = 0; start < inputs.shape[0]; start += chunk)
        {
            long m = Math.Min(chunk, inputs.shape[0] - start);
            parts.Add(Chunk(model, inputs.narrow(0, start, m), targets.narrow(0, start, m), options.Output));
        }
        return new Explanation(cat(parts, 0).to(inputs.dtype).MoveToOuterDisposeScope());
    }

    /// <summary>Guided IG of one chunk of inputs, all rows stepping together; float64 [m, ...].</summary>
    Tensor Chunk(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, OutputFunction output)
    {
        using var scope = NewDisposeScope();
        long m = inputs.shape[0];
        var target = inputs.flatten(1).to(ScalarType.Float64);
        long n = target.shape[1];
        var baseline = zeros_like(target);
        var d = target - baseline;
        var moves = d.ne(0.0);
        var total = d.abs().sum(1);
        var z = baseline.clone();
        var attribution = zeros_like(target);
        long k = (long)Math.Floor(Fraction * (n - 1)) + 1;
        double inf = double.PositiveInfinity;

        for (int t = 1; t <= Steps; t++)
        {
            using var step = NewDisposeScope();
            var (_, gradients, _) = GradientEngine.Evaluate(model, z.to(inputs.dtype).view(inputs.shape), targets, output);
            var g = gradients.flatten(1).to(ScalarType.Float64);
            double alpha = (double)t / Steps;
            double alphaMin = Math.Max(alpha - MaxDist, 0.0), alphaMax = Math.Min(alpha + MaxDist, 1.0);
            var zMin = baseline + d * alphaMin;
            var zMax = baseline + d * alphaMax;
            var goal = total * (1.0 - (double)t / Steps);
            var active = ones(m, ScalarType.Bool, inputs.device);
            for (long iteration = 0; active.any().item<bool>(); iteration++)
            {
                // Each iteration moves at least one feature to its bound or ends the row's step; more than n + 2 is a bug.
                if (iteration > n + 2) throw new InvalidOperationException($"guided_ig: step {t} did not reach its L1 target in {iteration} iterations");
                using var inner = NewDisposeScope();
                var old = z.clone();
                var alphaOfZ = where(moves, (z - baseline) / d, full_like(z, alphaMax));
                var behind = alphaOfZ.lt(alphaMin).logical_and(active.unsqueeze(1));
                z.copy_(where(behind, zMin, z));
                var current = (z - target).abs().sum(1);
                var gap = (goal - current).abs();
                var close = gap.le(maximum(maximum(goal.abs(), current.abs()) * Epsilon, full_like(gap, Epsilon)));
                var moving = active.logical_and(close.logical_not());

                var h = where(z.eq(zMax), full_like(g, inf), g.abs());
                var threshold = h.kthvalue(k, 1).values.unsqueeze(1);
                var selected = h.le(threshold).logical_and(h.ne(inf)).logical_and(moving.unsqueeze(1));
                var reachable = ((z - zMax).abs() * selected).sum(1);
                var gamma = where(reachable.gt(0.0), (current - goal) / reachable, full_like(reachable, inf));
                var all = gamma.gt(1.0).unsqueeze(1);
                var partial = where(all, zMax, z + (zMax - z) * gamma.unsqueeze(1));
                z.copy_(where(selected, partial, z));
                attribution.add_((z - old) * g);
                active = (active.logical_and(moving).logical_and(gamma.gt(1.0))).MoveToOuterDisposeScope();
            }
        }
        return attribution.view(inputs.shape).MoveToOuterDisposeScope();
    }
}
