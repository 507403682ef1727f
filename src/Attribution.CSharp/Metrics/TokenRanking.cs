using Attribution.Methods;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// The order in which the token metrics perturb a text: its real tokens by score, most important first, ties broken
/// by a seeded random order per input (as <see cref="FeatureRanking"/> does for pixels); padding ranks after every
/// real token, so a count up to the text's length never reaches it.
/// </summary>
public static class TokenRanking
{
    /// <summary>
    /// Rank [B, T] (int64, CPU) of each position of <paramref name="scores"/> [B, T]: 0 = the highest-scoring real token;
    /// positions at or past lengths[i] rank lengths[i] .. T - 1.
    /// </summary>
    public static Tensor MostImportantFirst(Tensor scores, Tensor lengths, long seed)
    {
        using var generator = new Generator((ulong)seed, CPU);
        return MostImportantFirst(scores, lengths, generator);
    }

    /// <summary><see cref="MostImportantFirst(Tensor, Tensor, long)"/> breaking ties by draws from <paramref name="generator"/> (see <see cref="FeatureRanking.AscendingRanks(Tensor, Generator)"/>).</summary>
    public static Tensor MostImportantFirst(Tensor scores, Tensor lengths, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(lengths);
        if (scores.dim() != 2) throw new ArgumentException($"token scores must be [B, T]; got [{string.Join(", ", scores.shape)}] (sum embedding maps with TokenScores.Sum first)");
        using var scope = NewDisposeScope();
        var padding = TokenScores.PaddingMask(lengths.cpu(), scores.shape[1], CPU);
        // ascending order of the negated scores; +inf puts padding last whatever the scores there
        var keyed = scores.detach().cpu().to(ScalarType.Float64).neg().masked_fill(padding, double.PositiveInfinity);
        return FeatureRanking.AscendingRanks(keyed, generator).MoveToOuterDisposeScope();
    }

    /// <summary>Throws unless every length is in [0, <paramref name="sequenceLength"/>].</summary>
    public static void CheckLengths(Tensor lengths, long sequenceLength)
    {
        using var scope = NewDisposeScope();
        var l = lengths.cpu().to(ScalarType.Int64);
        if (l.numel() == 0) return;
        long min = l.min().item<long>(), max = l.max().item<long>();
        if (min < 0 || max > sequenceLength)
            throw new ArgumentException($"lengths must be in [0, {sequenceLength}] (the sequence length); got {min} .. {max}");
    }
}
