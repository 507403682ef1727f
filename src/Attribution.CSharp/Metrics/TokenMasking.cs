using Attribution.Data;
using Attribution.Methods;
using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// Negative perturbation for text (Gat et al. 2022, Sec. 5.2): masking a word means replacing it with the unknown
/// token <c>&lt;unk&gt;</c>. For each fraction q, the round(q * length) least important real tokens of every text
/// (lowest word score first; padding is never a candidate and stays padding) become &lt;unk&gt;, and the model
/// predicts again. Ties are broken by a seeded random order, as in <see cref="NegativePerturbation"/>, so equal
/// scores do not favour the tokens' storage order. The metric is <see cref="NegativePerturbation.MaskedPredictions(IFeatureSpace, Tensor, IReadOnlyList{double}, Generator, int)"/>
/// over a <see cref="TokenSpace"/>.
/// </summary>
public sealed class TokenMasking
{
    public TokenMasking(IReadOnlyList<double>? fractions = null, long maskToken = Vocabulary.Unknown)
    {
        Fractions = fractions ?? Enumerable.Range(1, 9).Select(i => i / 10.0).ToArray();
        if (Fractions.Count < 1 || Fractions.Any(f => !(f >= 0 && f <= 1)) || Fractions.Zip(Fractions.Skip(1)).Any(p => p.Second <= p.First))
            throw new ArgumentException("fractions must be strictly increasing values in [0, 1]", nameof(fractions));
        MaskToken = maskToken;
    }

    public IReadOnlyList<double> Fractions { get; }

    /// <summary>The id written over masked tokens (default &lt;unk&gt;).</summary>
    public long MaskToken { get; }

    /// <summary>
    /// <paramref name="tokens"/> [B, T] with, in row i, the <paramref name="counts"/>[i] lowest-scoring real tokens
    /// (positions below lengths[i]) replaced by <see cref="MaskToken"/>; counts are capped at the length.
    /// Scores [B, T] as from <see cref="TokenScores.Sum"/>. Returns a new tensor on the tokens' device.
    /// </summary>
    public Tensor MaskLeastImportant(Tensor tokens, Tensor scores, Tensor lengths, Tensor counts, long seed)
    {
        Check(tokens, scores, lengths);
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)seed, CPU);
        var real = TokenScores.PaddingMask(lengths.cpu(), tokens.shape[1], CPU).logical_not();
        var rank = FeatureRanking.AscendingRanks(scores, real, generator);
        var k = counts.to(ScalarType.Int64).cpu().minimum(lengths.to(ScalarType.Int64).cpu()).unsqueeze(1);
        return tokens.cpu().masked_fill(rank.lt(k), MaskToken).to(tokens.device).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="MaskLeastImportant(Tensor, Tensor, Tensor, Tensor, long)"/> with count round(fraction * length) per row.</summary>
    public Tensor MaskLeastImportant(Tensor tokens, Tensor scores, Tensor lengths, double fraction, long seed)
    {
        if (!(fraction >= 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the masked fraction must be in [0, 1]");
        using var scope = NewDisposeScope();
        var counts = lengths.to(ScalarType.Float64).cpu().mul(fraction).round().to(ScalarType.Int64);
        return MaskLeastImportant(tokens, scores, lengths, counts, seed).MoveToOuterDisposeScope();
    }

    /// <summary>Predicted class of every text after masking each fraction, [F, B] (int64, CPU).</summary>
    public Tensor MaskedPredictions(TextModel model, Tensor tokens, Tensor lengths, Tensor scores, long seed, Device device, int batchSize = 256)
    {
        using var generator = new Generator((ulong)seed, CPU);
        return MaskedPredictions(model, tokens, lengths, scores, generator, device, batchSize);
    }

    /// <summary>
    /// <see cref="MaskedPredictions(TextModel, Tensor, Tensor, Tensor, long, Device, int)"/> with ties broken by draws from
    /// <paramref name="tieBreak"/>: texts masked a block at a time from one generator (blocks a multiple of
    /// <paramref name="batchSize"/>) give the predictions of all of them at once.
    /// </summary>
    public Tensor MaskedPredictions(TextModel model, Tensor tokens, Tensor lengths, Tensor scores, Generator tieBreak, Device device, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(model);
        Check(tokens, scores, lengths);
        using var scope = NewDisposeScope();
        var space = new TokenSpace(model, tokens, lengths, device, MaskToken);
        return NegativePerturbation.MaskedPredictions(space, scores, Fractions, tieBreak, batchSize).MoveToOuterDisposeScope();
    }

    /// <summary>AUC of a curve over this metric's fractions (trapezoid), as <see cref="NegativePerturbation.AreaUnder"/>.</summary>
    public double AreaUnder(IReadOnlyList<double> curve) => Auc.Trapezoid(Fractions, curve);

    static void Check(Tensor tokens, Tensor scores, Tensor lengths)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(lengths);
        if (tokens.dim() != 2 || !scores.shape.SequenceEqual(tokens.shape))
            throw new ArgumentException($"tokens [B, T] and scores must have one shape; got tokens [{string.Join(", ", tokens.shape)}], scores [{string.Join(", ", scores.shape)}] (sum embedding maps with TokenScores.Sum first)");
        if (lengths.dim() != 1 || lengths.shape[0] != tokens.shape[0])
            throw new ArgumentException($"lengths must be [B] with B = {tokens.shape[0]}; got [{string.Join(", ", lengths.shape)}]");
    }
}
