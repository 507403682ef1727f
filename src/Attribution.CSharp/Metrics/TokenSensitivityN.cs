using Attribution.Data;
using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>Token Sensitivity-N per size: the correlation of every text, and their mean.</summary>
/// <param name="Sizes">The subset sizes, in the order evaluated.</param>
/// <param name="Correlations">Correlations[k][i]: Pearson correlation over the masks for text i at Sizes[k]; NaN when skipped or when either side is constant.</param>
/// <param name="MeanCorrelation">Per size, the mean over the texts whose correlation is defined (NaN if none).</param>
/// <param name="Undefined">Per size, texts evaluated but left out of the mean (a constant side).</param>
/// <param name="Skipped">Per size, texts not evaluated because the size is below 1 or reaches their length.</param>
public sealed record TokenSensitivityNResult(TokenSubsetSize[] Sizes, double[][] Correlations, double[] MeanCorrelation, int[] Undefined, int[] Skipped)
{
    /// <summary>The results of blocks of texts (same sizes and masks), in order, as one set.</summary>
    public static TokenSensitivityNResult Concatenate(IReadOnlyList<TokenSensitivityNResult> blocks)
    {
        var sizes = blocks[0].Sizes;
        var correlations = Enumerable.Range(0, sizes.Length).Select(k => blocks.SelectMany(b => b.Correlations[k]).ToArray()).ToArray();
        var skipped = Enumerable.Range(0, sizes.Length).Select(k => blocks.Sum(b => b.Skipped[k])).ToArray();
        return new(sizes, correlations, TokenSensitivityN.MeansOfDefined(correlations),
                   correlations.Select((r, k) => r.Count(double.IsNaN) - skipped[k]).ToArray(), skipped);
    }
}

/// <summary>
/// Sensitivity-N on tokens (Ancona et al. 2018, Sec. 4; for text as InputIBA, Zhang et al. 2021, Sec. 4.4.1). For each
/// size, <c>MasksPerN</c> random sets of real tokens are replaced by &lt;unk&gt;; per text, the Pearson correlation over
/// the sets between the sum of the token scores in the set and the drop of the target's logit,
/// f_t(x) - f_t(x with the set at &lt;unk&gt;); per size the mean over the texts.
/// <para><b>Shared masks with variable lengths.</b> For each size and mask one random key per position is drawn and
/// shared by all texts; a text masks the N lowest-keyed of its own real positions. Texts of equal length therefore get
/// identical sets (as images of one size do in the image version), and a shorter text gets the same random order
/// restricted to its positions. Padding is never masked. A text whose length is at most N is skipped for that N.</para>
/// <para>Defaults: 200 sets per size (InputIBA); sizes = counts on <see cref="SensitivityN.LogGrid"/> (12 log-spaced
/// values from 1 to 80% of the median real length; the grid is ours). <see cref="TokenSubsetSize.Fraction"/> sizes
/// give InputIBA's IMDB variant, a fixed percentage of each text.</para>
/// </summary>
public sealed class TokenSensitivityN
{
    /// <param name="sizes">Subset sizes; null: <see cref="DefaultSizes"/> of the evaluated lengths.</param>
    /// <param name="masksPerN">Random sets per size (200, as InputIBA).</param>
    /// <param name="maskToken">Id written over masked tokens; default &lt;unk&gt;.</param>
    public TokenSensitivityN(IReadOnlyList<TokenSubsetSize>? sizes = null, int masksPerN = 200, long maskToken = Vocabulary.Unknown)
    {
        if (sizes is not null)
        {
            if (sizes.Count == 0) throw new ArgumentException("at least one subset size", nameof(sizes));
            foreach (var size in sizes)
                if (size is TokenSubsetSize.Count { N: < 1 } || size is TokenSubsetSize.Fraction f && !(f.Value > 0 && f.Value < 1))
                    throw new ArgumentException($"subset sizes are counts of at least 1 or fractions in (0, 1); got {size}", nameof(sizes));
        }
        if (masksPerN < 2) throw new ArgumentOutOfRangeException(nameof(masksPerN), masksPerN, "a correlation needs at least 2 masks");
        Sizes = sizes?.ToArray();
        MasksPerN = masksPerN;
        MaskToken = maskToken;
    }

    public IReadOnlyList<TokenSubsetSize>? Sizes { get; }
    public int MasksPerN { get; }
    public long MaskToken { get; }

    /// <summary>Counts on <see cref="SensitivityN.LogGrid"/> of the median of <paramref name="lengths"/> (the lower median for an even count).</summary>
    public static TokenSubsetSize[] DefaultSizes(Tensor lengths, int points = 12)
    {
        using var scope = NewDisposeScope();
        var sorted = lengths.cpu().to(ScalarType.Int64).data<long>().ToArray().Order().ToArray();
        int median = sorted.Length == 0 ? 1 : (int)Math.Max(1, sorted[(sorted.Length - 1) / 2]);
        return SensitivityN.LogGrid(median, points).Select(n => (TokenSubsetSize)new TokenSubsetSize.Count(n)).ToArray();
    }

    /// <summary>
    /// Masks [n, M, T] (bool): text j masks its sizes[j] real positions (below lengths[j]) with the lowest
    /// <paramref name="keys"/> [M, T]; the keys are shared, so equal lengths give equal sets.
    /// </summary>
    public static Tensor SubsetMasks(Tensor keys, Tensor lengths, Tensor sizes)
    {
        using var scope = NewDisposeScope();
        long m = keys.shape[0], t = keys.shape[1], n = lengths.shape[0];
        var padding = Methods.TokenScores.PaddingMask(lengths.cpu(), t, CPU).view(n, 1, t);
        // keys are in [0, 1): 2 ranks every padding position after the real ones
        var keyed = keys.cpu().to(ScalarType.Float64).unsqueeze(0).expand(n, m, t).masked_fill(padding, 2.0);
        var ranks = keyed.argsort(2).argsort(2);
        return ranks.lt(sizes.cpu().to(ScalarType.Int64).view(n, 1, 1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Tokens [B, T] (int64, padded), lengths [B], token scores [B, T] (<see cref="Methods.TokenScores.Sum"/>), targets [B].
    /// The masked copies of several texts go through the model together, <paramref name="batchSize"/> at a time, without
    /// gradients. Keys are drawn from a CPU generator seeded with <paramref name="seed"/>.
    /// </summary>
    public TokenSensitivityNResult Evaluate(TextModel model, Tensor tokens, Tensor lengths, Tensor scores, Tensor targets,
                                           long seed, Device device, int batchSize = 1024)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(lengths);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(targets);
        if (tokens.dim() != 2 || !scores.shape.SequenceEqual(tokens.shape))
            throw new ArgumentException($"tokens [B, T] and scores must have one shape; got tokens [{string.Join(", ", tokens.shape)}], scores [{string.Join(", ", scores.shape)}] (sum embedding maps with TokenScores.Sum first)");
        if (lengths.dim() != 1 || lengths.shape[0] != tokens.shape[0] || targets.dim() != 1 || targets.shape[0] != tokens.shape[0])
            throw new ArgumentException($"lengths and targets must be [{tokens.shape[0]}]; got [{string.Join(", ", lengths.shape)}] and [{string.Join(", ", targets.shape)}]");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "at least one text per batch");
        TokenRanking.CheckLengths(lengths, tokens.shape[1]);
        using var scope = NewDisposeScope();
        var x = tokens.cpu();
        var l = lengths.cpu().to(ScalarType.Int64);
        var s = scores.detach().cpu().to(ScalarType.Float64);
        var t = targets.cpu().to(ScalarType.Int64).view(-1, 1);
        var lengthsOf = l.data<long>().ToArray();
        var sizes = Sizes?.ToArray() ?? DefaultSizes(l);
        var reference = Training.Logits(model, x, model.Classify, device, batchSize).to(ScalarType.Float64).gather(1, t);  // [B, 1]
        using var generator = new Generator((ulong)seed, CPU);
        long b = x.shape[0], m = MasksPerN;
        long inputsPerChunk = InputsPerChunk(batchSize);
        var correlations = new double[sizes.Length][];
        var skipped = new int[sizes.Length];
        for (int k = 0; k < sizes.Length; k++)
        {
            using var sizeScope = NewDisposeScope();
            var keys = rand([m, x.shape[1]], generator: generator);
            correlations[k] = Enumerable.Repeat(double.NaN, (int)b).ToArray();
            skipped[k] = Enumerable.Range(0, (int)b).Count(i => sizes[k].For(lengthsOf[i]) is null);
            // Chunks are fixed stretches of the texts (the texts too short for this size left out of each), so that a
            // set evaluated a block at a time puts the same texts through the model together.
            for (long start = 0; start < b; start += inputsPerChunk)
            {
                using var chunkScope = NewDisposeScope();
                var chunk = Enumerable.Range((int)start, (int)Math.Min(inputsPerChunk, b - start)).Where(i => sizes[k].For(lengthsOf[i]) is not null).ToArray();
                if (chunk.Length == 0) continue;
                long n = chunk.Length;
                var index = tensor(chunk.Select(i => (long)i).ToArray());
                var counts = tensor(chunk.Select(i => sizes[k].For(lengthsOf[i])!.Value).ToArray());
                var masks = SubsetMasks(keys, l.index_select(0, index), counts);                      // [n, M, T]
                var masked = x.index_select(0, index).unsqueeze(1).expand(n, m, x.shape[1]).masked_fill(masks, MaskToken);
                var logits = Training.Logits(model, masked.reshape(n * m, x.shape[1]), model.Classify, device, batchSize).to(ScalarType.Float64);
                var chosen = logits.view(n, m, -1).gather(2, t.index_select(0, index).view(n, 1, 1).expand(n, m, 1)).squeeze(2);
                var drops = reference.index_select(0, index) - chosen;                                 // [n, M]
                var attributed = masks.to(ScalarType.Float64).mul(s.index_select(0, index).unsqueeze(1)).sum(2);
                var r = SensitivityN.RowPearson(attributed, drops);
                for (int j = 0; j < chunk.Length; j++) correlations[k][chunk[j]] = r[j];
            }
        }
        var undefined = correlations.Select((r, k) => r.Count(double.IsNaN) - skipped[k]).ToArray();
        return new TokenSensitivityNResult(sizes, correlations, MeansOfDefined(correlations), undefined, skipped);
    }

    /// <summary>How many texts' masked copies go through the model together.</summary>
    public long InputsPerChunk(int batchSize = 1024) => Math.Max(1, batchSize / MasksPerN);

    /// <summary>Per size, the mean over the texts whose correlation is defined.</summary>
    internal static double[] MeansOfDefined(double[][] correlations) =>
        correlations.Select(r => r.Where(v => !double.IsNaN(v)).DefaultIfEmpty(double.NaN).Average()).ToArray();
}
