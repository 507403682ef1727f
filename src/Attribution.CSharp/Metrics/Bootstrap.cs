namespace Attribution.Metrics;

/// <summary>A confidence interval and how it was made.</summary>
/// <param name="Low">Lower end.</param>
/// <param name="High">Upper end.</param>
/// <param name="Count">The values it was computed from (NaN values left out).</param>
public sealed record ConfidenceInterval(double Low, double High, int Count);

/// <summary>
/// The percentile bootstrap (Efron 1979) of a mean over inputs: the mean of <c>resamples</c> samples drawn with
/// replacement from the per-input values, and the interval between the (1 - level)/2 and (1 + level)/2 quantiles of
/// those means. It states how much a metric's average would move with another draw of inputs of the same kind, which is
/// what separates two methods' scores or not. Seeded: the same values and seed give the same interval on any machine.
/// </summary>
public static class Bootstrap
{
    /// <summary>Resamples used by the toolkit's reports.</summary>
    public const int DefaultResamples = 2000;

    /// <summary>The interval of the mean of <paramref name="values"/> (NaN values are left out; fewer than two values
    /// give NaN ends).</summary>
    public static ConfidenceInterval MeanInterval(IReadOnlyList<double> values, long seed, int resamples = DefaultResamples, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (resamples < 100) throw new ArgumentOutOfRangeException(nameof(resamples), resamples, "at least 100 resamples");
        if (level is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(level), level, "a level in (0, 1)");
        var x = values.Where(v => !double.IsNaN(v)).ToArray();
        if (x.Length < 2) return new ConfidenceInterval(double.NaN, double.NaN, x.Length);
        // System.Random with a seed runs the same (legacy, documented) generator on every platform and .NET version.
        var random = new Random(unchecked((int)(seed ^ (seed >> 32))));
        var means = new double[resamples];
        for (int r = 0; r < resamples; r++)
        {
            double sum = 0;
            for (int i = 0; i < x.Length; i++) sum += x[random.Next(x.Length)];
            means[r] = sum / x.Length;
        }
        Array.Sort(means);
        return new ConfidenceInterval(Quantile(means, (1 - level) / 2), Quantile(means, (1 + level) / 2), x.Length);
    }

    /// <summary>
    /// The percentile interval of any statistic of the inputs (e.g. a mean over subset sizes of means over inputs):
    /// <paramref name="statistic"/> is given the indices of a resample of the <paramref name="count"/> inputs, drawn with
    /// replacement. NaN statistics of a resample are left out; fewer than two inputs give NaN ends.
    /// </summary>
    public static ConfidenceInterval StatisticInterval(int count, Func<int[], double> statistic, long seed, int resamples = DefaultResamples, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(statistic);
        if (resamples < 100) throw new ArgumentOutOfRangeException(nameof(resamples), resamples, "at least 100 resamples");
        if (level is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(level), level, "a level in (0, 1)");
        if (count < 2) return new ConfidenceInterval(double.NaN, double.NaN, count);
        var random = new Random(unchecked((int)(seed ^ (seed >> 32))));
        var values = new List<double>(resamples);
        var sample = new int[count];
        for (int r = 0; r < resamples; r++)
        {
            for (int i = 0; i < count; i++) sample[i] = random.Next(count);
            double v = statistic(sample);
            if (!double.IsNaN(v)) values.Add(v);
        }
        if (values.Count < 2) return new ConfidenceInterval(double.NaN, double.NaN, count);
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return new ConfidenceInterval(Quantile(sorted, (1 - level) / 2), Quantile(sorted, (1 + level) / 2), count);
    }

    // Linear interpolation between order statistics (numpy's default), on sorted values.
    static double Quantile(double[] sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }
}
