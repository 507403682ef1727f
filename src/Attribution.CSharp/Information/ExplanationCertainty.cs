using Attribution.Metrics;
using static TorchSharp.torch;

namespace Attribution.Information;

/// <summary>
/// Explanation certainty (Luo, McDermott and O'Riordan, "Sampling Matters in Explanations", Sec. 3.2) in the paper's
/// pixel-wise view: the (pixel value, attribution) pairs of all pixels of all inputs are samples of one bivariate
/// distribution, and their mutual information is estimated with KSG (<see cref="MutualInformation.Ksg"/>) from a
/// sample of pairs. Written so that the maps never need to be whole in memory: the pairs' positions are drawn first
/// (<see cref="PairPositions"/>), then each block of inputs gives the pairs that fall in it (<see cref="PairsIn"/>), and
/// the estimate and its interval are computed from the gathered pairs (<see cref="Estimate"/>).
/// </summary>
public static class ExplanationCertainty
{
    /// <summary>Groups of inputs the interval's jackknife leaves out one at a time.</summary>
    public const int DefaultGroups = 10;

    /// <summary>
    /// <paramref name="pairs"/> distinct flat positions in [0, <paramref name="total"/>) (every position when there are no
    /// more), uniformly without replacement, ascending. Floyd's algorithm: one draw per chosen position and memory for
    /// those alone, where a permutation of every position would take 8 bytes each (60 GB for 50,000 ImageNet images).
    /// Seeded by <paramref name="seed"/> through System.Random, the same generator on every platform.
    /// </summary>
    public static long[] PairPositions(long total, int pairs, long seed)
    {
        if (total < 0) throw new ArgumentOutOfRangeException(nameof(total), total, "a count of positions");
        if (pairs < 1) throw new ArgumentOutOfRangeException(nameof(pairs), pairs, "at least one pair");
        if (total <= pairs) return Enumerable.Range(0, (int)total).Select(i => (long)i).ToArray();
        long derived = Runtime.Seeds.Derive(seed, "mi/pairs");
        var random = new Random(unchecked((int)(derived ^ (derived >> 32))));
        var chosen = new HashSet<long>(pairs);
        // For j = total - pairs .. total - 1: draw t in [0, j]; take t, or j when t is taken already. Each subset of
        // the size is equally likely (Bentley and Floyd 1987).
        for (long j = total - pairs; j < total; j++)
        {
            long t = random.NextInt64(j + 1);
            if (!chosen.Add(t)) chosen.Add(j);
        }
        var positions = chosen.ToArray();
        Array.Sort(positions);
        return positions;
    }

    /// <summary>
    /// The pairs among ascending <paramref name="positions"/> (flat over all inputs) that lie in the block of inputs
    /// starting at input <paramref name="firstInput"/>: the inputs' values and the maps' attributions there, float64,
    /// in the positions' order. Inputs and maps [n, ...] of one shape.
    /// </summary>
    public static (Tensor Values, Tensor Attributions) PairsIn(Tensor inputs, Tensor maps, long firstInput, IReadOnlyList<long> positions)
    {
        ArgumentNullException.ThrowIfNull(positions);
        if (!inputs.shape.SequenceEqual(maps.shape)) throw new ArgumentException("inputs and maps must have one shape");
        long perInput = inputs.shape[0] == 0 ? 0 : inputs.numel() / inputs.shape[0];
        long low = firstInput * perInput, high = low + inputs.numel();
        var inside = positions.Where(p => p >= low && p < high).Select(p => p - low).ToArray();
        using var scope = NewDisposeScope();
        var index = tensor(inside, ScalarType.Int64);
        var values = inputs.detach().cpu().reshape(-1).index_select(0, index).to(ScalarType.Float64);
        var attributions = maps.detach().cpu().reshape(-1).index_select(0, index).to(ScalarType.Float64);
        return (values.MoveToOuterDisposeScope(), attributions.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The KSG estimate (k neighbours) from the gathered pairs, with a 95% interval over inputs: a delete-a-group
    /// jackknife (Quenouille 1956; Efron and Stein 1981). The <paramref name="inputs"/> inputs are dealt at random into
    /// <paramref name="groups"/> groups; the estimate is recomputed from the same pairs with each group's inputs left
    /// out; the variance is (G - 1)/G times the sum of squared deviations of those G estimates from their mean, and the
    /// interval the estimate plus or minus Student's t (G - 1 degrees of freedom) standard errors.
    /// <para>Why not the bootstrap the other metrics use: resampling inputs with replacement repeats pixels, and
    /// repeated points have zero distances, which a nearest-neighbour estimator reads as dependence. Leaving inputs out
    /// repeats nothing. Pairs come from inputs, so the pixels of one input vary together; treating inputs as the units
    /// (the "ultimate cluster" of two-stage sampling) counts that and the draw of the pairs.</para>
    /// <para>Cost: G + 1 estimates (KSG is O(N^2)), about 3.5 s at 4,096 pairs on one core here.</para>
    /// </summary>
    /// <param name="values">The pairs' input values, float64 [N].</param>
    /// <param name="attributions">The pairs' attributions, float64 [N].</param>
    /// <param name="positions">The pairs' flat positions (<see cref="PairPositions"/>), in the order of the pairs.</param>
    /// <param name="perInput">Positions per input (the size of one map).</param>
    /// <param name="inputs">How many inputs the positions range over.</param>
    /// <param name="k">KSG's neighbours.</param>
    /// <param name="seed">Seeds KSG's jitter and the dealing of inputs into groups.</param>
    /// <param name="groups">The jackknife's groups (2 to 31).</param>
    public static (double Value, ConfidenceInterval Interval) Estimate(Tensor values, Tensor attributions, IReadOnlyList<long> positions, long perInput,
                                                                      long inputs, int k = 3, long seed = 0, int groups = DefaultGroups)
    {
        ArgumentNullException.ThrowIfNull(positions);
        if (groups < 2 || groups > StudentT975.Length + 1) throw new ArgumentOutOfRangeException(nameof(groups), groups, $"between 2 and {StudentT975.Length + 1} groups");
        if (values.shape[0] != positions.Count) throw new ArgumentException($"{values.shape[0]} pairs but {positions.Count} positions");
        using var scope = NewDisposeScope();
        double value = MutualInformation.Ksg(values, attributions, k, seed);
        int g = (int)Math.Min(groups, inputs);
        if (g < 2) return (value, new ConfidenceInterval(double.NaN, double.NaN, (int)inputs));
        // Inputs dealt into g groups of (nearly) equal size, in a seeded random order.
        using var dealing = new Generator((ulong)Runtime.Seeds.Derive(seed, "mi/jackknife-groups"), CPU);
        var groupOfInput = empty(inputs, ScalarType.Int64);
        groupOfInput.index_put_(arange(inputs, ScalarType.Int64).remainder(g), randperm(inputs, generator: dealing));
        var owners = tensor(positions.Select(p => p / perInput).ToArray(), ScalarType.Int64);
        var groupOfPair = groupOfInput.index_select(0, owners);
        var leftOut = new double[g];
        for (int j = 0; j < g; j++)
        {
            using var replicateScope = NewDisposeScope();
            var keep = groupOfPair.ne(j).nonzero().squeeze(1);
            if (keep.shape[0] <= k) return (value, new ConfidenceInterval(double.NaN, double.NaN, (int)inputs));
            leftOut[j] = MutualInformation.Ksg(values.index_select(0, keep), attributions.index_select(0, keep), k, seed);
        }
        double mean = leftOut.Average();
        double variance = (g - 1.0) / g * leftOut.Sum(v => (v - mean) * (v - mean));
        double half = StudentT975[g - 2] * Math.Sqrt(variance);
        return (value, new ConfidenceInterval(value - half, value + half, (int)inputs));
    }

    /// <summary>
    /// <see cref="Estimate"/> for inputs and maps [B, ...] held whole: the same pairs, value and interval as gathering
    /// them a block of inputs at a time.
    /// </summary>
    public static (double Value, ConfidenceInterval Interval) Pixelwise(Tensor inputs, Tensor maps, int pairs = 4096, int k = 3, long seed = 0, int groups = DefaultGroups)
    {
        using var scope = NewDisposeScope();
        var positions = PairPositions(inputs.numel(), pairs, seed);
        var (values, attributions) = PairsIn(inputs, maps, 0, positions);
        long perInput = inputs.shape[0] == 0 ? 1 : inputs.numel() / inputs.shape[0];
        return Estimate(values, attributions, positions, perInput, inputs.shape[0], k, seed, groups);
    }

    /// <summary>Student's t 0.975 quantiles for 1 .. 30 degrees of freedom (two-sided 95%).</summary>
    static readonly double[] StudentT975 =
    [
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
    ];
}
