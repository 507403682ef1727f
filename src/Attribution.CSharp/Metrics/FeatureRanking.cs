using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// The ranking shared by the perturbation metrics: features in attribution order, ties broken by a seeded
/// random order per input, so that a map with many equal values (exact zeros, say) gains nothing from the
/// features' storage order.
/// </summary>
public static class FeatureRanking
{
    /// <summary>
    /// Rank of each feature of each row of <paramref name="flatMaps"/> [B, D] in ascending order (0 = lowest);
    /// each row breaks its ties in its own random order drawn from a CPU generator seeded with <paramref name="seed"/>.
    /// Returns int64 [B, D] on the CPU.
    /// </summary>
    public static Tensor AscendingRanks(Tensor flatMaps, long seed)
    {
        using var generator = new Generator((ulong)seed, CPU);
        return AscendingRanks(flatMaps, generator);
    }

    /// <summary>
    /// <see cref="AscendingRanks(Tensor, long)"/> with the tie-breaking order drawn from <paramref name="generator"/>, which
    /// advances by one row of draws per row: ranking rows 0..a-1 and then rows a..b-1 from one generator gives what
    /// ranking all b rows at once gives, so a metric can rank a set of inputs a block at a time.
    /// </summary>
    public static Tensor AscendingRanks(Tensor flatMaps, Generator generator)
    {
        using var scope = NewDisposeScope();
        var maps = flatMaps.cpu();
        long b = maps.shape[0], d = maps.shape[1];
        var shuffle = rand([b, d], generator: generator).argsort(1);               // a random permutation per row
        var order = shuffle.gather(1, maps.gather(1, shuffle).sort(1, false, true).Indices);
        var ranks = empty_like(order);
        ranks.scatter_(1, order, arange(d, ScalarType.Int64).unsqueeze(0).expand(b, d));
        return ranks.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Advances <paramref name="generator"/> past the tie-breaking draws of <paramref name="rows"/> rows of
    /// <paramref name="slots"/> slots, as ranking them would (<see cref="AscendingRanks(Tensor, Generator)"/> draws one
    /// row per input, whatever the scores): a block of inputs computed apart from the blocks before it (a shard's, or
    /// a resumed run's) then breaks its ties as one generator running through every block would.
    /// </summary>
    public static void SkipRows(Generator generator, long rows, long slots)
    {
        ArgumentNullException.ThrowIfNull(generator);
        if (rows < 0 || slots < 0) throw new ArgumentException($"rows ({rows}) and slots ({slots}) must not be negative");
        if (rows == 0 || slots == 0) return;
        // drawn in pieces of about 16M values, so that skipping 50,000 ImageNet rows holds no 10 GB tensor
        long perPiece = Math.Max(1, (1L << 24) / slots);
        for (long done = 0; done < rows; done += perPiece)
        {
            using var draws = rand([Math.Min(perPiece, rows - done), slots], generator: generator);
        }
    }

    /// <summary>
    /// <see cref="AscendingRanks(Tensor, Generator)"/> of scores [B, D] where only the slots marked in <paramref name="real"/>
    /// [B, D] (bool; null: all) are features: the others rank after every real slot of their row (keyed +inf), so a
    /// count up to a row's real features never reaches them. Every perturbation metric ranks through this one function
    /// (<see cref="IFeatureSpace.Real"/>); to rank most important first, pass the negated scores.
    /// </summary>
    public static Tensor AscendingRanks(Tensor scores, Tensor? real, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.dim() != 2) throw new ArgumentException($"scores must be [B, D]; got [{string.Join(", ", scores.shape)}]", nameof(scores));
        if (real is null) return AscendingRanks(scores, generator);
        if (!real.shape.SequenceEqual(scores.shape))
            throw new ArgumentException($"real [{string.Join(", ", real.shape)}] must have the scores' shape [{string.Join(", ", scores.shape)}]", nameof(real));
        using var scope = NewDisposeScope();
        var keyed = scores.detach().cpu().to(ScalarType.Float64).masked_fill(real.cpu().logical_not(), double.PositiveInfinity);
        return AscendingRanks(keyed, generator).MoveToOuterDisposeScope();
    }

    /// <summary>Rank in descending order (0 = most important), same tie-breaking as <see cref="AscendingRanks(Tensor, long)"/>.</summary>
    public static Tensor DescendingRanks(Tensor flatMaps, long seed)
    {
        using var negated = flatMaps.neg();
        return AscendingRanks(negated, seed);
    }

    /// <summary><see cref="DescendingRanks(Tensor, long)"/> drawing from <paramref name="generator"/> (see <see cref="AscendingRanks(Tensor, Generator)"/>).</summary>
    public static Tensor DescendingRanks(Tensor flatMaps, Generator generator)
    {
        using var negated = flatMaps.neg();
        return AscendingRanks(negated, generator);
    }

    /// <summary>
    /// One score per pixel: maps [B, C, H, W] summed over channels, flattened to [B, H*W] (CPU), so that the
    /// image metrics perturb a pixel in all its channels at once, as RISE and Sensitivity-N do.
    /// </summary>
    public static Tensor PixelScores(Tensor maps)
    {
        if (maps.dim() != 4) throw new ArgumentException($"maps must be [B, C, H, W]; got [{string.Join(", ", maps.shape)}]");
        return maps.detach().cpu().sum(1).reshape(maps.shape[0], -1);
    }
}
