using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>Sensitivity-N per N: the correlation of every input, and their mean.</summary>
/// <param name="N">Subset sizes, increasing.</param>
/// <param name="Correlations">Correlations[k][i]: Pearson correlation over the masks for input i at N[k]; NaN when either side is constant.</param>
/// <param name="MeanCorrelation">Per N, the mean over the inputs whose correlation is defined.</param>
/// <param name="Undefined">Per N, how many inputs were left out of the mean (NaN correlation).</param>
public sealed record SensitivityNResult(int[] N, double[][] Correlations, double[] MeanCorrelation, int[] Undefined)
{
    /// <summary>The result of per-input correlations at sizes <paramref name="n"/>: each size's mean over its defined values.</summary>
    public static SensitivityNResult Of(int[] n, double[][] correlations) =>
        new(n, correlations,
            correlations.Select(r => r.Where(v => !double.IsNaN(v)).DefaultIfEmpty(double.NaN).Average()).ToArray(),
            correlations.Select(r => r.Count(double.IsNaN)).ToArray());

    /// <summary>The results of blocks of inputs (same sizes and masks), in order, as one set.</summary>
    public static SensitivityNResult Concatenate(IReadOnlyList<SensitivityNResult> blocks) =>
        Of(blocks[0].N, Enumerable.Range(0, blocks[0].N.Length).Select(k => blocks.SelectMany(b => b.Correlations[k]).ToArray()).ToArray());
}

/// <summary>
/// Sensitivity-N (Ancona et al. 2018, Sec. 4; InputIBA, Zhang et al. 2021, Sec. 4.4.1). For each subset size N,
/// draw <c>MasksPerN</c> random sets of N pixels (shared by all inputs: the same index sets for every input),
/// set those pixels to <c>MaskValue</c> (0) in all channels, and record the drop of the target's logit,
/// f_t(x) - f_t(x with the set masked). Per input, the Pearson correlation over the sets between that drop and
/// the sum of the attributions (summed over channels) in the set; per N the mean over the inputs.
/// A method satisfies Sensitivity-N when the correlation is 1.
/// <para>Defaults: 200 index sets per N (InputIBA: "we randomly sample 200 index sets for each n"; Ancona et al.
/// use 100); N on a log grid of 12 sizes from 1 to 80% of the pixels (the papers plot N on a log axis; the
/// exact grid is ours). The target's logit (pre-softmax output), as Ancona et al. use.</para>
/// </summary>
public sealed class SensitivityN
{
    /// <param name="n">Subset sizes; null: <see cref="LogGrid"/> of the pixel count.</param>
    /// <param name="masksPerN">Random index sets per size (200, as InputIBA).</param>
    /// <param name="maskValue">Value of a masked pixel (0).</param>
    public SensitivityN(IReadOnlyList<int>? n = null, int masksPerN = 200, double maskValue = 0.0)
    {
        if (n is not null && (n.Count == 0 || n.Any(v => v < 1))) throw new ArgumentException("subset sizes must be at least 1");
        if (masksPerN < 2) throw new ArgumentOutOfRangeException(nameof(masksPerN), masksPerN, "a correlation needs at least 2 masks");
        Sizes = n?.ToArray();
        MasksPerN = masksPerN;
        MaskValue = maskValue;
    }

    public IReadOnlyList<int>? Sizes { get; }
    public int MasksPerN { get; }
    public double MaskValue { get; }

    /// <summary><paramref name="points"/> log-spaced sizes from 1 to round(maxFraction * features), rounded, duplicates removed.</summary>
    public static int[] LogGrid(int features, int points = 12, double maxFraction = 0.8)
    {
        int top = Math.Max(1, (int)Math.Round(maxFraction * features));
        return Enumerable.Range(0, points)
            .Select(i => (int)Math.Round(Math.Exp(Math.Log(top) * i / Math.Max(1, points - 1))))
            .Distinct().ToArray();
    }

    /// <summary>
    /// Inputs [B, C, H, W], maps of the same shape, targets [B]. For each N, the masked copies of several inputs
    /// go through the model together, <paramref name="batchSize"/> images at a time. Index sets are drawn from a
    /// CPU generator seeded with <paramref name="seed"/>.
    /// </summary>
    public SensitivityNResult Evaluate(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor maps, Tensor targets,
                                      long seed, Device device, int batchSize = 1024)
    {
        if (inputs.dim() != 4 || !maps.shape.SequenceEqual(inputs.shape))
            throw new ArgumentException($"inputs must be [B, C, H, W] and maps the same shape; got [{string.Join(", ", inputs.shape)}] and [{string.Join(", ", maps.shape)}]");
        using var scope = NewDisposeScope();
        var x = inputs.detach().cpu();
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3], pixels = h * w;
        var sizes = Sizes?.ToArray() ?? LogGrid((int)pixels);
        if (sizes.Any(v => v >= pixels)) throw new ArgumentException($"subset sizes must be below the pixel count {pixels}: with N = {pixels} every set is the same");
        var t = targets.cpu().to(ScalarType.Int64).view(b, 1);
        var scores = FeatureRanking.PixelScores(maps).to(ScalarType.Float64);                 // [B, P]
        var reference = Training.Logits(model, x, device, batchSize).to(ScalarType.Float64).gather(1, t);  // [B, 1]
        using var generator = new Generator((ulong)seed, CPU);
        long m = MasksPerN;
        long inputsPerChunk = InputsPerChunk(batchSize);
        var correlations = new double[sizes.Length][];
        for (int k = 0; k < sizes.Length; k++)
        {
            using var sizeScope = NewDisposeScope();
            // a random N-subset per mask: the pixels whose random key ranks below N
            var masks = rand([m, pixels], generator: generator).argsort(1).argsort(1).lt(sizes[k]);   // [M, P] bool
            var attributed = scores.matmul(masks.to(ScalarType.Float64).t());                           // [B, M]
            var drops = new List<Tensor>();
            for (long start = 0; start < b; start += inputsPerChunk)
            {
                using var chunkScope = NewDisposeScope();
                long n = Math.Min(inputsPerChunk, b - start);
                var masked = x.narrow(0, start, n).unsqueeze(1).expand(n, m, c, h, w)
                    .masked_fill(masks.view(1, m, 1, h, w), MaskValue);                                // a fresh tensor
                var logits = Training.Logits(model, masked.reshape(n * m, c, h, w), device, batchSize).to(ScalarType.Float64);
                var chosen = logits.view(n, m, -1).gather(2, t.narrow(0, start, n).view(n, 1, 1).expand(n, m, 1)).squeeze(2);
                drops.Add((reference.narrow(0, start, n) - chosen).MoveToOuterDisposeScope());
            }
            correlations[k] = RowPearson(attributed, cat(drops, 0));
        }
        return SensitivityNResult.Of(sizes, correlations);
    }

    /// <summary>How many inputs' masked copies go through the model together.</summary>
    public long InputsPerChunk(int batchSize = 1024) => Math.Max(1, batchSize / MasksPerN);

    /// <summary>Pearson correlation of each row of a [B, M] with the same row of b; NaN where a row is constant.</summary>
    internal static double[] RowPearson(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var da = a - a.mean([1], keepdim: true);
        var db = b - b.mean([1], keepdim: true);
        var sxy = (da * db).sum(1);
        var sxx = da.square().sum(1);
        var syy = db.square().sum(1);
        var xs = sxy.data<double>().ToArray();
        var vx = sxx.data<double>().ToArray();
        var vy = syy.data<double>().ToArray();
        // relative tolerance: a row constant up to rounding has no ranking to correlate
        var ma = a.abs().amax([1]).data<double>().ToArray();
        var mb = b.abs().amax([1]).data<double>().ToArray();
        var result = new double[xs.Length];
        for (int i = 0; i < xs.Length; i++)
        {
            bool flatA = vx[i] <= 1e-24 * Math.Max(1, ma[i] * ma[i]) * a.shape[1];
            bool flatB = vy[i] <= 1e-24 * Math.Max(1, mb[i] * mb[i]) * b.shape[1];
            result[i] = flatA || flatB ? double.NaN : xs[i] / Math.Sqrt(vx[i] * vy[i]);
        }
        return result;
    }
}
