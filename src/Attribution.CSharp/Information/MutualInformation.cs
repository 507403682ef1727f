using static TorchSharp.torch;

namespace Attribution.Information;

/// <summary>
/// Mutual information estimates in nats, for explanation certainty (Luo, McDermott and O'Riordan, "Sampling
/// Matters in Explanations", Sec. 3.2: I(x; z) between inputs and explanations lower-bounds the certainty
/// Pr(x | z) >= exp(I(x; z) - H(x)); the paper reports MI in nats but does not name its estimator).
/// <para>Estimator: Kraskov, Stoegbauer and Grassberger (2004), algorithm 1, with k = 3 neighbours and the
/// max-norm: I = psi(k) + psi(N) - mean(psi(n_x + 1) + psi(n_y + 1)), where eps_i is the distance from point i to
/// its k-th neighbour in the joint space and n_x, n_y count the points strictly closer than eps_i in each marginal.
/// It is consistent and nearly unbiased for independent variables (estimates scatter around 0, and may be
/// slightly negative); for strongly dependent variables and few samples it is biased downwards (it
/// underestimates), increasingly with dimension. Ties (repeated values, e.g. black pixels) make distances zero,
/// so, as Kraskov et al. advise, a tiny seeded jitter (1e-10 of each column's spread) is added first.</para>
/// <para>Cost: brute force, O(N^2 (d_x + d_y)) in chunks of rows; keep N to a few thousand.</para>
/// </summary>
public static class MutualInformation
{
    /// <summary>KSG estimate of I(X; Y) from paired samples x [N, d_x] and y [N, d_y] (or [N]).</summary>
    public static double Ksg(Tensor x, Tensor y, int k = 3, long seed = 0, double jitter = 1e-10)
    {
        using var scope = NewDisposeScope();
        var a = AsMatrix(x);
        var b = AsMatrix(y);
        long n = a.shape[0];
        if (b.shape[0] != n) throw new ArgumentException($"{n} x samples but {b.shape[0]} y samples");
        if (k < 1 || k >= n) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in [1, {n - 1}]");
        using var g = new Generator((ulong)seed, CPU);
        a = Jitter(a, jitter, g);
        b = Jitter(b, jitter, g);
        long chunk = Math.Max(1, 4_000_000 / (n * (a.shape[1] + b.shape[1])));
        double sum = 0;
        for (long start = 0; start < n; start += chunk)
        {
            using var chunkScope = NewDisposeScope();
            long m = Math.Min(chunk, n - start);
            var dx = MaxNormDistances(a.narrow(0, start, m), a);                     // [m, N]
            var dy = MaxNormDistances(b.narrow(0, start, m), b);
            var joint = maximum(dx, dy);
            // the k-th neighbour: the (k+1)-th smallest distance of the row (the smallest is the point itself, 0)
            var eps = joint.topk(k + 1, 1, largest: false).values.narrow(1, k, 1); // [m, 1]
            var nx = dx.lt(eps).sum(1).to(ScalarType.Float64) - 1;                 // minus the point itself
            var ny = dy.lt(eps).sum(1).to(ScalarType.Float64) - 1;
            sum += (digamma(nx + 1) + digamma(ny + 1)).sum().item<double>();
        }
        return Digamma(k) + Digamma(n) - sum / n;
    }

    /// <summary>
    /// The paper's pixel-wise view (it assumes pixels i.i.d.): the pairs (x_p, z_p) of all pixels of all inputs
    /// are samples of one bivariate distribution. Inputs and maps of one shape [B, ...]; at most
    /// <paramref name="maxSamples"/> pairs, drawn without replacement with the seeded generator.
    /// </summary>
    public static double PixelwiseExplanationCertainty(Tensor inputs, Tensor maps, int maxSamples = 4096, int k = 3, long seed = 0)
    {
        using var scope = NewDisposeScope();
        var (xs, zs, _) = PixelwisePairs(inputs, maps, maxSamples, seed);
        return Ksg(xs, zs, k, seed);
    }

    /// <summary>
    /// <see cref="PixelwiseExplanationCertainty"/> (the same value, from the same pairs) with a 95% interval over inputs:
    /// a delete-a-group jackknife (Quenouille; Efron and Stein 1981). The inputs are dealt at random into
    /// <paramref name="groups"/> groups; the estimate is recomputed from the sampled pairs with each group's inputs left
    /// out, and the variance of the estimate is (G - 1)/G times the sum of squared deviations of those G estimates from
    /// their mean; the interval is the estimate plus or minus Student's t (G - 1 degrees of freedom) standard errors.
    /// <para>Why this and not the bootstrap the other metrics use: resampling inputs with replacement repeats pixels,
    /// and repeated points have zero distances, which a nearest-neighbour estimator reads as dependence. Leaving
    /// inputs out repeats nothing. Pairs are drawn from inputs, so pixels of one input vary together; treating inputs
    /// as the units (the "ultimate cluster" of two-stage sampling) counts both that and the draw of pairs.</para>
    /// <para>Cost: G + 1 estimates (KSG is O(N^2)): about 8 s at 4,096 pairs on one core here.</para>
    /// </summary>
    public static (double Value, Metrics.ConfidenceInterval Interval) PixelwiseExplanationCertaintyWithInterval(
        Tensor inputs, Tensor maps, int maxSamples = 4096, int k = 3, long seed = 0, int groups = 10)
    {
        if (groups < 2 || groups > 31) throw new ArgumentOutOfRangeException(nameof(groups), groups, "between 2 and 31 groups");
        using var scope = NewDisposeScope();
        var (xs, zs, owner) = PixelwisePairs(inputs, maps, maxSamples, seed);
        double value = Ksg(xs, zs, k, seed);
        long count = inputs.shape[0];
        int g = (int)Math.Min(groups, count);
        if (g < 2) return (value, new Metrics.ConfidenceInterval(double.NaN, double.NaN, (int)count));
        // Inputs dealt into g groups of (nearly) equal size, in a seeded random order.
        using var dealing = new Generator((ulong)Runtime.Seeds.Derive(seed, "mi/jackknife-groups"), CPU);
        var groupOfInput = empty(count, ScalarType.Int64);
        groupOfInput.index_put_(arange(count, ScalarType.Int64).remainder(g), randperm(count, generator: dealing));
        var groupOfPair = groupOfInput.index_select(0, owner);
        var leftOut = new double[g];
        for (int j = 0; j < g; j++)
        {
            using var replicateScope = NewDisposeScope();
            var keep = groupOfPair.ne(j).nonzero().squeeze(1);
            if (keep.shape[0] <= k) return (value, new Metrics.ConfidenceInterval(double.NaN, double.NaN, (int)count));
            leftOut[j] = Ksg(xs.index_select(0, keep), zs.index_select(0, keep), k, seed);
        }
        double mean = leftOut.Average();
        double variance = (g - 1.0) / g * leftOut.Sum(v => (v - mean) * (v - mean));
        double half = StudentT975[g - 2] * Math.Sqrt(variance);
        return (value, new Metrics.ConfidenceInterval(value - half, value + half, (int)count));
    }

    /// <summary>The (pixel, attribution) pairs as float64 vectors, and the input each pair comes from.</summary>
    static (Tensor Values, Tensor Attributions, Tensor Owner) PixelwisePairs(Tensor inputs, Tensor maps, int maxSamples, long seed)
    {
        if (!inputs.shape.SequenceEqual(maps.shape)) throw new ArgumentException("inputs and maps must have one shape");
        var xs = inputs.detach().cpu().to(ScalarType.Float64).flatten();
        var zs = maps.detach().cpu().to(ScalarType.Float64).flatten();
        long perInput = Math.Max(1, xs.shape[0] / Math.Max(1, inputs.shape[0]));
        var owner = arange(xs.shape[0], ScalarType.Int64).div(perInput, rounding_mode: RoundingMode.floor);
        if (xs.shape[0] > maxSamples)
        {
            using var g = new Generator((ulong)Runtime.Seeds.Derive(seed, "mi/subsample"), CPU);
            var pick = randperm(xs.shape[0], generator: g).narrow(0, 0, maxSamples);
            xs = xs.index_select(0, pick);
            zs = zs.index_select(0, pick);
            owner = owner.index_select(0, pick);
        }
        return (xs, zs, owner);
    }

    /// <summary>Student's t 0.975 quantiles for 1 .. 30 degrees of freedom (two-sided 95%).</summary>
    static readonly double[] StudentT975 =
    [
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
    ];

    /// <summary>
    /// I(x; z) between whole inputs and maps, one sample per input (B of them), each flattened and projected to
    /// <paramref name="dimension"/> components with a seeded Gaussian random matrix (Johnson-Lindenstrauss) to
    /// keep the kNN search meaningful. A projection can only lose information (data processing inequality), so this
    /// estimates a lower bound of I(x; z), up to the estimator's own bias.
    /// </summary>
    public static double ProjectedExplanationCertainty(Tensor inputs, Tensor maps, int dimension = 4, int k = 3, long seed = 0)
    {
        using var scope = NewDisposeScope();
        long b = inputs.shape[0];
        var x = inputs.detach().cpu().to(ScalarType.Float64).reshape(b, -1);
        var z = maps.detach().cpu().to(ScalarType.Float64).reshape(b, -1);
        using var g = new Generator((ulong)Runtime.Seeds.Derive(seed, "mi/projection"), CPU);
        var px = randn([x.shape[1], dimension], ScalarType.Float64, generator: g) / Math.Sqrt(dimension);
        var pz = randn([z.shape[1], dimension], ScalarType.Float64, generator: g) / Math.Sqrt(dimension);
        return Ksg(x.matmul(px), z.matmul(pz), k, seed);
    }

    static Tensor AsMatrix(Tensor t)
    {
        var m = t.detach().cpu().to(ScalarType.Float64);
        return m.dim() == 1 ? m.unsqueeze(1) : m.reshape(m.shape[0], -1);
    }

    static Tensor Jitter(Tensor m, double amount, Generator g)
    {
        if (amount <= 0) return m;
        var spread = (m.amax([0]) - m.amin([0])).clamp_min(1e-300);
        return m + randn(m.shape, ScalarType.Float64, generator: g) * (spread * amount);
    }

    /// <summary>Chebyshev distances [m, N] between rows of a [m, d] and b [N, d].</summary>
    static Tensor MaxNormDistances(Tensor a, Tensor b) => (a.unsqueeze(1) - b.unsqueeze(0)).abs().amax([2]);

    /// <summary>psi(n) for a positive integer n: -gamma + sum over j = 1 .. n - 1 of 1/j.</summary>
    static double Digamma(long n)
    {
        double s = -0.57721566490153286;
        for (long j = 1; j < n; j++) s += 1.0 / j;
        return s;
    }
}
