using Attribution.Data;
using Attribution.Rendering;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>EHR per input.</summary>
/// <param name="Ehr">Per input: area under its ratio curve; NaN for excluded inputs.</param>
/// <param name="Ratios">Per input: the effective heat ratio at each quantile; empty for excluded inputs.</param>
/// <param name="Quantiles">The quantile thresholds.</param>
/// <param name="Excluded">Inputs left out because their box covers more than the allowed fraction of the image.</param>
public sealed record EffectiveHeatRatioResult(double[] Ehr, double[][] Ratios, double[] Quantiles, int Excluded)
{
    public double Mean => Ehr.Where(v => !double.IsNaN(v)).DefaultIfEmpty(double.NaN).Average();

    /// <summary>The results of blocks of inputs, in order, as one set.</summary>
    public static EffectiveHeatRatioResult Concatenate(IReadOnlyList<EffectiveHeatRatioResult> blocks) =>
        new(blocks.SelectMany(b => b.Ehr).ToArray(), blocks.SelectMany(b => b.Ratios).ToArray(), blocks[0].Quantiles, blocks.Sum(b => b.Excluded));
}

/// <summary>
/// Effective Heat Ratio (InputIBA, Zhang et al. 2021, Sec. 4.5, Table 2), following the authors' evaluation code:
/// the heat of a pixel is the mean over channels of |map| (the paper scores non-negative maps, IBA's bits and InputIBA's
/// mask; a signed map's heat is its magnitude, so a pixel with no attribution has none: min-max scaling the signed values
/// would give it -min / (max - min) and spread heat over the background); the heat is min-max scaled to [0, 1]; heat below <c>BaseThreshold</c> (0.1) is set to 0;
/// for each quantile q in 0, 0.1, ..., 1 the threshold t_q is the q-quantile (linear interpolation) of the
/// remaining heat values, capped at 0.99 of the maximum so that the top quantile keeps at least the maximum;
/// the pixels with heat >= t_q are selected, and the ratio is (heat of the selected pixels inside the box) /
/// (number of selected pixels). EHR is the trapezoid area under the ratios over q; at most 1 (a map equal to the
/// box indicator), 0 when no heat falls in the box. Only inputs whose box covers at most <c>MaxBoxFraction</c>
/// (one third: the paper uses boxes "covering less than 33% of the whole image") are scored; the others are
/// excluded and counted. A map with no heat at or above the base threshold (a constant map) scores 0.
/// </summary>
public sealed class EffectiveHeatRatio
{
    public EffectiveHeatRatio(double baseThreshold = 0.1, IReadOnlyList<double>? quantiles = null, double maxBoxFraction = 1.0 / 3)
    {
        BaseThreshold = baseThreshold;
        Quantiles = quantiles?.ToArray() ?? Enumerable.Range(0, 11).Select(i => i / 10.0).ToArray();
        if (Quantiles.Count < 2 || Quantiles.Any(q => q is < 0 or > 1) || Quantiles.Zip(Quantiles.Skip(1)).Any(p => p.Second <= p.First))
            throw new ArgumentException("quantiles must be at least two strictly increasing values in [0, 1]");
        MaxBoxFraction = maxBoxFraction;
    }

    public double BaseThreshold { get; }
    public IReadOnlyList<double> Quantiles { get; }
    public double MaxBoxFraction { get; }

    /// <summary>Maps [B, C, H, W] and one region (a box or a mask) per map.</summary>
    public EffectiveHeatRatioResult Evaluate(Tensor maps, IReadOnlyList<IRegion> boxes)
    {
        if (maps.dim() != 4) throw new ArgumentException($"maps must be [B, C, H, W]; got [{string.Join(", ", maps.shape)}]");
        if (boxes.Count != maps.shape[0]) throw new ArgumentException($"{boxes.Count} boxes for {maps.shape[0]} maps");
        using var scope = NewDisposeScope();
        int b = (int)maps.shape[0], h = (int)maps.shape[2], w = (int)maps.shape[3];
        var flat = maps.detach().cpu().to(ScalarType.Float32).abs().mean([1]).reshape(b, -1);
        var ehr = new double[b];
        var ratios = new double[b][];
        int excluded = 0;
        for (int i = 0; i < b; i++)
        {
            if (boxes[i].Area > MaxBoxFraction * h * w) { ehr[i] = double.NaN; ratios[i] = []; excluded++; continue; }
            ratios[i] = Curve(flat[i].data<float>().ToArray(), w, boxes[i]);
            ehr[i] = Auc.Trapezoid(Quantiles, ratios[i]);
        }
        return new EffectiveHeatRatioResult(ehr, ratios, Quantiles.ToArray(), excluded);
    }

    /// <summary>The ratio at each quantile for one map (row-major, <paramref name="width"/> columns).</summary>
    public double[] Curve(float[] map, int width, IRegion box)
    {
        float lo = map.Min(), hi = map.Max();
        var heat = map.Select(v => hi > lo ? (v - lo) / (hi - lo) : 0f).Select(v => v >= BaseThreshold ? v : 0f).ToArray();
        var hot = heat.Where(v => v > 0 && v >= BaseThreshold).ToArray();
        if (hot.Length == 0) return Quantiles.Select(_ => 0.0).ToArray();
        double max = hot.Max();
        return Quantiles.Select(q =>
        {
            double t = Math.Min(MapNormalisation.Quantile(hot, q), 0.99 * max);
            double inside = 0;
            long selected = 0;
            for (int p = 0; p < heat.Length; p++)
            {
                if (heat[p] == 0 || heat[p] < t) continue;
                selected++;
                if (box.Contains(p / width, p % width)) inside += heat[p];
            }
            return selected == 0 ? 0.0 : inside / selected;
        }).ToArray();
    }
}
