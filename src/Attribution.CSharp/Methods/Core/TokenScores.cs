using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Word scores from embedding attributions (Gat et al. 2022, Sec. 5.2, footnote 2): "in the textual modality the
/// features are the word embedding coordinates and the score of each word is the sum of the scores of its
/// coordinates".
/// </summary>
public static class TokenScores
{
    /// <summary>
    /// Scores [B, T] = the sum over the last axis of <paramref name="maps"/> [B, T, E]. With
    /// <paramref name="lengths"/> [B] (int64), positions at or past a row's length (padding) score exactly 0.
    /// Same dtype and device as the maps.
    /// </summary>
    public static Tensor Sum(Tensor maps, Tensor? lengths = null)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (maps.dim() != 3)
            throw new ArgumentException($"TokenScores.Sum takes embedding attributions [B, T, E]; got [{string.Join(", ", maps.shape)}]", nameof(maps));
        using var scope = NewDisposeScope();
        var scores = maps.sum([2]);
        if (lengths is not null) scores = scores.masked_fill(PaddingMask(lengths, maps.shape[1], maps.device), 0.0);
        return scores.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The inverse of <see cref="Sum"/> for one score a word: maps shaped like <paramref name="embeddings"/> ([B, T, E]
    /// or the view's [B, T, 1, E]) holding scores [B, T] divided evenly over each word's coordinates, so that
    /// <see cref="Sum"/> gives the scores back.
    /// </summary>
    public static Tensor Spread(Tensor scores, Tensor embeddings)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(embeddings);
        using var scope = NewDisposeScope();
        long coordinates = embeddings.shape.Skip(2).Aggregate(1L, (a, b) => a * b);
        var perPosition = embeddings.shape.Select((d, i) => i < 2 ? d : 1L).ToArray();            // [B, T, 1, ...]
        return (scores / coordinates).to(embeddings.dtype).reshape(perPosition).expand(embeddings.shape).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// True at the positions that hold a word: [B, T] bool from embeddings [B, T, ...]. <c>&lt;pad&gt;</c> embeds to the
    /// zero vector (padding_idx) and pads every text's end, so a word is a position with a non-zero coordinate.
    /// </summary>
    public static Tensor Words(Tensor embeddings)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        using var scope = NewDisposeScope();
        return embeddings.flatten(2).abs().sum(2).gt(0).MoveToOuterDisposeScope();
    }

    /// <summary>True at padding positions: [B, T] bool, position t of row i is padding when t >= lengths[i].</summary>
    public static Tensor PaddingMask(Tensor lengths, long sequenceLength, Device device)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        if (lengths.dim() != 1)
            throw new ArgumentException($"lengths must be a vector [B]; got [{string.Join(", ", lengths.shape)}]", nameof(lengths));
        using var scope = NewDisposeScope();
        var positions = arange(sequenceLength, ScalarType.Int64, device).unsqueeze(0);
        return positions.ge(lengths.to(device).to(ScalarType.Int64).unsqueeze(1)).MoveToOuterDisposeScope();
    }
}
