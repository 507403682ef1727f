using System;
using System.Linq;

namespace Attribution.Rendering;

/// <summary>
/// The per-map scalings behind <see cref="HeatmapView"/>. Clipping at the 99th percentile rather than
/// the maximum keeps a few extreme pixels (common in gradient maps) from washing out the rest.
/// </summary>
public static class MapNormalisation
{
    /// <summary>The percentile used for clipping, as a fraction.</summary>
    public const double ClipQuantile = 0.99;

    /// <summary>Quantile with linear interpolation between order statistics (numpy's default), q in [0, 1].</summary>
    public static double Quantile(float[] values, double q)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length == 0) throw new ArgumentException("Quantile of an empty array is undefined; pass at least one value.", nameof(values));
        if (q is < 0 or > 1 || double.IsNaN(q)) throw new ArgumentOutOfRangeException(nameof(q), q, "q must be in [0, 1].");
        var sorted = values.Select(v => (double)v).ToArray();
        Array.Sort(sorted);
        double position = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(position);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (position - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>|map| / p99(|map|) clipped to [0, 1]. Falls back to the maximum when p99 is 0 (sparse maps); an all-zero map stays 0.</summary>
    public static float[] Absolute(float[] map)
    {
        var abs = Abs(map);
        double scale = Scale(abs);
        return abs.Select(a => scale > 0 ? (float)Math.Min(a / scale, 1.0) : 0f).ToArray();
    }

    /// <summary>map / p99(|map|) clipped to [-1, 1], symmetric so that white always means zero.</summary>
    public static float[] Signed(float[] map)
    {
        double scale = Scale(Abs(map));
        return map.Select(v => scale > 0 ? (float)Math.Clamp(v / scale, -1.0, 1.0) : 0f).ToArray();
    }

    private static float[] Abs(float[] map)
    {
        ArgumentNullException.ThrowIfNull(map);
        for (int i = 0; i < map.Length; i++)
            if (!float.IsFinite(map[i]))
                throw new ArgumentException($"The attribution map holds {map[i]} at index {i}; a heatmap needs finite values. Find where the method produced it (e.g. a division by zero) rather than rendering it.", nameof(map));
        return map.Select(Math.Abs).ToArray();
    }

    private static double Scale(float[] abs)
    {
        double p = Quantile(abs, ClipQuantile);
        return p > 0 ? p : abs.Max();
    }
}
