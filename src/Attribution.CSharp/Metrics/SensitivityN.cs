using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>Sensitivity-N per subset size: the correlation of every input, and their mean.</summary>
/// <param name="Sizes">The subset sizes, in the order evaluated.</param>
/// <param name="Correlations">Correlations[k][i]: Pearson correlation over the masks for input i at Sizes[k]; NaN when skipped or when either side is constant.</param>
/// <param name="MeanCorrelation">Per size, the mean over the inputs whose correlation is defined (NaN if none).</param>
/// <param name="Undefined">Per size, inputs evaluated but left out of the mean (a constant side).</param>
/// <param name="Skipped">Per size, inputs not evaluated because the size is below 1 or reaches their real count.</param>
public sealed record SensitivityNResult(SubsetSize[] Sizes, double[][] Correlations, double[] MeanCorrelation, int[] Undefined, int[] Skipped)
{
    /// <summary>The sizes as counts N (the image metric's sizes); throws for a fraction size.</summary>
    public int[] N => Sizes.Select(s => s is SubsetSize.Count c ? c.N : throw new InvalidOperationException($"size {s} is not a count")).ToArray();

    /// <summary>The result of per-input correlations at <paramref name="sizes"/>, <paramref name="skipped"/> of them not evaluated per size.</summary>
    public static SensitivityNResult Of(SubsetSize[] sizes, double[][] correlations, int[] skipped) =>
        new(sizes, correlations,
            correlations.Select(r => r.Where(v => !double.IsNaN(v)).DefaultIfEmpty(double.NaN).Average()).ToArray(),
            correlations.Select((r, k) => r.Count(double.IsNaN) - skipped[k]).ToArray(), skipped);

    /// <summary>The results of blocks of inputs (same sizes and masks), in order, as one set.</summary>
    public static SensitivityNResult Concatenate(IReadOnlyList<SensitivityNResult> blocks)
    {
        var sizes = blocks[0].Sizes;
        return Of(sizes,
                  Enumerable.Range(0, sizes.Length).Select(k => blocks.SelectMany(b => b.Correlations[k]).ToArray()).ToArray(),
                  Enumerable.Range(0, sizes.Length).Select(k => blocks.Sum(b => b.Skipped[k])).ToArray());
    }
}

/// <summary>
/// Sensitivity-N (Ancona et al. 2018, Sec. 4; InputIBA, Zhang et al. 2021, Sec. 4.4.1), written once over an
/// <see cref="IFeatureSpace"/> (<see cref="Correlate"/>). For each subset size, <c>MasksPerN</c> random sets of
/// features are set to the substrate; per input, the Pearson correlation over the sets between the drop of the target's
/// logit, f_t(x) - f_t(x with the set at the substrate), and the sum of the scores in the set; per size the mean over
/// the inputs. A method satisfies Sensitivity-N when the correlation is 1.
/// <para><b>Shared masks.</b> For each size and mask one random key per slot is drawn and shared by all inputs; an
/// input masks the N lowest-keyed of its own real slots. Inputs with the same real slots get identical sets (every
/// image of one size does), and an input with fewer gets the same random order restricted to them. An input whose
/// size rule gives below 1 or its whole real count is skipped for that size (<see cref="SubsetSize"/>).</para>
/// <para>An instance is the image metric: pixels (<see cref="PixelSpace"/>) set to <c>MaskValue</c> (0) in all
/// channels, scores summed over channels. Defaults: 200 index sets per N (InputIBA: "we randomly sample 200 index sets
/// for each n"; Ancona et al. use 100); N on a log grid of 12 sizes from 1 to 80% of the pixels (the papers plot N on
/// a log axis; the exact grid is ours). The target's logit (pre-softmax output), as Ancona et al. use. Texts:
/// <see cref="TokenSensitivityN"/>.</para>
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
        long pixels = inputs.shape[2] * inputs.shape[3];
        var sizes = Sizes?.ToArray() ?? LogGrid((int)pixels);
        if (sizes.Any(v => v >= pixels)) throw new ArgumentException($"subset sizes must be below the pixel count {pixels}: with N = {pixels} every set is the same");
        using var scope = NewDisposeScope();
        var space = new PixelSpace(model, inputs, new Substrate.Black(MaskValue), device);
        return Correlate(space, maps, targets, sizes.Select(v => (SubsetSize)new SubsetSize.Count(v)).ToArray(), MasksPerN, seed, batchSize);
    }

    /// <summary>How many inputs' masked copies go through the model together.</summary>
    public long InputsPerChunk(int batchSize = 1024) => InputsPerChunk(MasksPerN, batchSize);

    /// <summary>How many inputs' <paramref name="masksPerN"/> masked copies go through the model together.</summary>
    public static long InputsPerChunk(int masksPerN, int batchSize) => Math.Max(1, batchSize / masksPerN);

    /// <summary>
    /// Sensitivity-N over <paramref name="space"/>: maps of its inputs (what <see cref="IFeatureSpace.Scores"/> reads),
    /// targets [B], the subset size rules, <paramref name="masksPerN"/> sets per size with keys drawn (rand [M, D] per
    /// size) from a CPU generator seeded with <paramref name="seed"/>, so every block of a set draws the same sets. The
    /// masked copies of several inputs go through the model together, <paramref name="batchSize"/> at a time.
    /// </summary>
    public static SensitivityNResult Correlate(IFeatureSpace space, Tensor maps, Tensor targets, IReadOnlyList<SubsetSize> sizes,
                                               int masksPerN, long seed, int batchSize = 1024)
    {
        ArgumentNullException.ThrowIfNull(space);
        ArgumentNullException.ThrowIfNull(sizes);
        FeatureSpace.CheckTargets(space, targets);
        if (sizes.Count == 0) throw new ArgumentException("at least one subset size", nameof(sizes));
        if (masksPerN < 2) throw new ArgumentOutOfRangeException(nameof(masksPerN), masksPerN, "a correlation needs at least 2 masks");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "at least one input per batch");
        using var scope = NewDisposeScope();
        long b = space.Count, d = space.Slots, m = masksPerN;
        var scores = space.Scores(maps).to(ScalarType.Float64);                                      // [B, D]
        var t = targets.cpu().to(ScalarType.Int64).view(b, 1);
        var reference = space.Logits(space.Inputs, batchSize).to(ScalarType.Float64).gather(1, t);   // [B, 1]
        var realCounts = FeatureSpace.RealCounts(space).data<long>().ToArray();
        using var generator = new Generator((ulong)seed, CPU);
        long inputsPerChunk = InputsPerChunk(masksPerN, batchSize);
        var correlations = new double[sizes.Count][];
        var skipped = new int[sizes.Count];
        for (int k = 0; k < sizes.Count; k++)
        {
            using var sizeScope = NewDisposeScope();
            var keys = rand([m, d], generator: generator);
            var count = realCounts.Select(sizes[k].For).ToArray();
            skipped[k] = count.Count(c => c is null);
            correlations[k] = space.Real is null
                ? SharedMasks(space, scores, reference, t, keys, count, inputsPerChunk, batchSize)
                : OwnMasks(space, scores, reference, t, keys, count, inputsPerChunk, batchSize);
        }
        return SensitivityNResult.Of(sizes.ToArray(), correlations, skipped);
    }

    /// <summary>
    /// Every slot of every input is real, so one size for all: the sets are one [M, D] mask shared by the block and the
    /// attributed sums one matrix product (the image metric's arithmetic, kept bit for bit).
    /// </summary>
    static double[] SharedMasks(IFeatureSpace space, Tensor scores, Tensor reference, Tensor t, Tensor keys, long?[] count, long inputsPerChunk, int batchSize)
    {
        long b = space.Count, m = keys.shape[0];
        if (b == 0 || count[0] is not { } n) return Enumerable.Repeat(double.NaN, (int)b).ToArray();
        using var scope = NewDisposeScope();
        // a random N-subset per mask: the slots whose random key ranks below N
        var masks = keys.argsort(1).argsort(1).lt(n);                                                  // [M, D] bool
        var attributed = scores.matmul(masks.to(ScalarType.Float64).t());                             // [B, M]
        var drops = new List<Tensor>();
        for (long start = 0; start < b; start += inputsPerChunk)
        {
            using var chunkScope = NewDisposeScope();
            long size = Math.Min(inputsPerChunk, b - start);
            var chunk = space.Rows(FeatureSpace.Range(start, size));
            var logits = chunk.Logits(chunk.Perturb(masks.unsqueeze(0)), batchSize).to(ScalarType.Float64);
            var chosen = logits.view(size, m, -1).gather(2, t.narrow(0, start, size).view(size, 1, 1).expand(size, m, 1)).squeeze(2);
            drops.Add((reference.narrow(0, start, size) - chosen).MoveToOuterDisposeScope());
        }
        return RowPearson(attributed, cat(drops, 0));
    }

    /// <summary>
    /// Inputs with their own real slots (texts of different lengths): each input masks its own count of its real slots
    /// with the lowest shared keys. Chunks are fixed stretches of the inputs with the skipped ones left out, so that a
    /// set evaluated a block at a time puts the same inputs through the model together.
    /// </summary>
    static double[] OwnMasks(IFeatureSpace space, Tensor scores, Tensor reference, Tensor t, Tensor keys, long?[] count, long inputsPerChunk, int batchSize)
    {
        long b = space.Count, m = keys.shape[0], d = keys.shape[1];
        var correlations = Enumerable.Repeat(double.NaN, (int)b).ToArray();
        for (long start = 0; start < b; start += inputsPerChunk)
        {
            using var chunkScope = NewDisposeScope();
            var rows = Enumerable.Range((int)start, (int)Math.Min(inputsPerChunk, b - start)).Where(i => count[i] is not null).Select(i => (long)i).ToArray();
            if (rows.Length == 0) continue;
            long n = rows.Length;
            var index = tensor(rows);
            var chunk = space.Rows(rows);
            var masks = SubsetMasks(keys, chunk.Real!, tensor(rows.Select(i => count[i]!.Value).ToArray()));     // [n, M, D]
            var logits = chunk.Logits(chunk.Perturb(masks), batchSize).to(ScalarType.Float64);
            var chosen = logits.view(n, m, -1).gather(2, t.index_select(0, index).view(n, 1, 1).expand(n, m, 1)).squeeze(2);
            var drops = reference.index_select(0, index) - chosen;                                              // [n, M]
            var attributed = masks.to(ScalarType.Float64).mul(scores.index_select(0, index).unsqueeze(1)).sum(2);
            var r = RowPearson(attributed, drops);
            for (int j = 0; j < rows.Length; j++) correlations[rows[j]] = r[j];
        }
        return correlations;
    }

    /// <summary>
    /// Masks [n, M, D] (bool): input j masks its sizes[j] real slots (<paramref name="real"/> [n, D]) with the lowest
    /// <paramref name="keys"/> [M, D]; the keys are shared, so equal real slots give equal sets.
    /// </summary>
    public static Tensor SubsetMasks(Tensor keys, Tensor real, Tensor sizes)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(real);
        ArgumentNullException.ThrowIfNull(sizes);
        using var scope = NewDisposeScope();
        long m = keys.shape[0], d = keys.shape[1], n = real.shape[0];
        // keys are in [0, 1): 2 ranks every slot that is not real after the real ones
        var keyed = keys.cpu().to(ScalarType.Float64).unsqueeze(0).expand(n, m, d).masked_fill(real.cpu().logical_not().view(n, 1, d), 2.0);
        var ranks = keyed.argsort(2).argsort(2);
        return ranks.lt(sizes.cpu().to(ScalarType.Int64).view(n, 1, 1)).MoveToOuterDisposeScope();
    }

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
