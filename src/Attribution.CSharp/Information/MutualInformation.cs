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
    /// <paramref name="maxSamples"/> pairs, drawn without replacement (<see cref="ExplanationCertainty.PairPositions"/>).
    /// <see cref="ExplanationCertainty.Pixelwise"/> gives the same value with its interval.
    /// </summary>
    public static double PixelwiseExplanationCertainty(Tensor inputs, Tensor maps, int maxSamples = 4096, int k = 3, long seed = 0)
    {
        using var scope = NewDisposeScope();
        var positions = ExplanationCertainty.PairPositions(inputs.numel(), maxSamples, seed);
        var (values, attributions) = ExplanationCertainty.PairsIn(inputs, maps, 0, positions);
        return Ksg(values, attributions, k, seed);
    }

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
