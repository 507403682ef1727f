using Attribution.Data;
using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// Sensitivity-N on tokens (Ancona et al. 2018, Sec. 4; for text as InputIBA, Zhang et al. 2021, Sec. 4.4.1):
/// <see cref="SensitivityN.Correlate"/> over a <see cref="TokenSpace"/>. For each size, <c>MasksPerN</c> random sets of
/// real tokens are replaced by &lt;unk&gt;; per text, the Pearson correlation over the sets between the sum of the token
/// scores in the set and the drop of the target's logit, f_t(x) - f_t(x with the set at &lt;unk&gt;); per size the mean
/// over the texts.
/// <para><b>Shared masks with variable lengths.</b> For each size and mask one random key per position is drawn and
/// shared by all texts; a text masks the N lowest-keyed of its own real positions. Texts of equal length therefore get
/// identical sets (as images of one size do in the image version), and a shorter text gets the same random order
/// restricted to its positions. Padding is never masked. A text whose length is at most N is skipped for that N.</para>
/// <para>Defaults: 200 sets per size (InputIBA); sizes = counts on <see cref="SensitivityN.LogGrid"/> (12 log-spaced
/// values from 1 to 80% of the median real length; the grid is ours). <see cref="SubsetSize.Fraction"/> sizes
/// give InputIBA's IMDB variant, a fixed percentage of each text.</para>
/// </summary>
public sealed class TokenSensitivityN
{
    /// <param name="sizes">Subset sizes; null: <see cref="DefaultSizes"/> of the evaluated lengths.</param>
    /// <param name="masksPerN">Random sets per size (200, as InputIBA).</param>
    /// <param name="maskToken">Id written over masked tokens; default &lt;unk&gt;.</param>
    public TokenSensitivityN(IReadOnlyList<SubsetSize>? sizes = null, int masksPerN = 200, long maskToken = Vocabulary.Unknown)
    {
        if (sizes is not null)
        {
            if (sizes.Count == 0) throw new ArgumentException("at least one subset size", nameof(sizes));
            foreach (var size in sizes)
                if (size is SubsetSize.Count { N: < 1 } || size is SubsetSize.Fraction f && !(f.Value > 0 && f.Value < 1))
                    throw new ArgumentException($"subset sizes are counts of at least 1 or fractions in (0, 1); got {size}", nameof(sizes));
        }
        if (masksPerN < 2) throw new ArgumentOutOfRangeException(nameof(masksPerN), masksPerN, "a correlation needs at least 2 masks");
        Sizes = sizes?.ToArray();
        MasksPerN = masksPerN;
        MaskToken = maskToken;
    }

    public IReadOnlyList<SubsetSize>? Sizes { get; }
    public int MasksPerN { get; }
    public long MaskToken { get; }

    /// <summary>Counts on <see cref="SensitivityN.LogGrid"/> of the median of <paramref name="lengths"/> (the lower median for an even count).</summary>
    public static SubsetSize[] DefaultSizes(Tensor lengths, int points = 12)
    {
        using var scope = NewDisposeScope();
        var sorted = lengths.cpu().to(ScalarType.Int64).data<long>().ToArray().Order().ToArray();
        int median = sorted.Length == 0 ? 1 : (int)Math.Max(1, sorted[(sorted.Length - 1) / 2]);
        return SensitivityN.LogGrid(median, points).Select(n => (SubsetSize)new SubsetSize.Count(n)).ToArray();
    }

    /// <summary>
    /// Masks [n, M, T] (bool): text j masks its sizes[j] real positions (below lengths[j]) with the lowest
    /// <paramref name="keys"/> [M, T]; the keys are shared, so equal lengths give equal sets (<see cref="SensitivityN.SubsetMasks"/>).
    /// </summary>
    public static Tensor SubsetMasks(Tensor keys, Tensor lengths, Tensor sizes)
    {
        using var scope = NewDisposeScope();
        var real = Methods.TokenScores.PaddingMask(lengths.cpu(), keys.shape[1], CPU).logical_not();
        return SensitivityN.SubsetMasks(keys, real, sizes).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Tokens [B, T] (int64, padded), lengths [B], token scores [B, T] (<see cref="Methods.TokenScores.Sum"/>), targets [B].
    /// The masked copies of several texts go through the model together, <paramref name="batchSize"/> at a time, without
    /// gradients. Keys are drawn from a CPU generator seeded with <paramref name="seed"/>.
    /// </summary>
    public SensitivityNResult Evaluate(TextModel model, Tensor tokens, Tensor lengths, Tensor scores, Tensor targets,
                                           long seed, Device device, int batchSize = 1024)
    {
        using var scope = NewDisposeScope();
        var space = new TokenSpace(model, tokens, lengths, device, MaskToken);
        var sizes = Sizes?.ToArray() ?? DefaultSizes(space.Lengths);
        return SensitivityN.Correlate(space, scores, targets, sizes, MasksPerN, seed, batchSize);
    }

    /// <summary>How many texts' masked copies go through the model together.</summary>
    public long InputsPerChunk(int batchSize = 1024) => SensitivityN.InputsPerChunk(MasksPerN, batchSize);
}
