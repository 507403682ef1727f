namespace Attribution.Metrics;

/// <summary>Spearman's rank correlation: Pearson's correlation of average ranks (ties share their mean rank).</summary>
public static class RankCorrelation
{
    public static double Spearman(IReadOnlyList<float> a, IReadOnlyList<float> b)
    {
        if (a.Count != b.Count) throw new ArgumentException($"maps of {a.Count} and {b.Count} features");
        return Pearson(AverageRanks(a), AverageRanks(b));
    }

    /// <summary>Ranks 1..n in ascending order; tied values get the mean of their ranks.</summary>
    public static double[] AverageRanks(IReadOnlyList<float> values)
    {
        int n = values.Count;
        var order = Enumerable.Range(0, n).ToArray();
        Array.Sort(order, (i, j) => values[i].CompareTo(values[j]));
        var ranks = new double[n];
        for (int start = 0; start < n;)
        {
            int end = start;
            while (end + 1 < n && values[order[end + 1]] == values[order[start]]) end++;
            double mean = (start + end) / 2.0 + 1;
            for (int k = start; k <= end; k++) ranks[order[k]] = mean;
            start = end + 1;
        }
        return ranks;
    }

    /// <summary>Pearson's correlation; NaN when either side is constant (no ranking to compare).</summary>
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        int n = x.Count;
        double mx = x.Average(), my = y.Average(), sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++)
        {
            double dx = x[i] - mx, dy = y[i] - my;
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
        }
        return sxx == 0 || syy == 0 ? double.NaN : sxy / Math.Sqrt(sxx * syy);
    }
}
