using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The input-space noise of InputIBA (Zhang et al. 2021, Remarks 1-2): eps ~ N(Mean, Std^2), with tensors that
/// broadcast against one input (e.g. [C, 1, 1] per channel for images, [1, E] per embedding coordinate for text
/// embeddings [T, E]). The input bottleneck draws its noise from it and Proposition 3 uses it as mu_I, sigma_I; the
/// WGAN's generator starts its learnable noise mean and std from it. The record owns its tensors.
/// </summary>
public sealed record InputStatistics(Tensor Mean, Tensor Std, long ReferenceCount) : IDisposable
{
    /// <summary>
    /// Mean and unbiased std (at least <paramref name="minStd"/>) of <paramref name="referenceInputs"/> [N, ...] over
    /// the samples and over every per-input dimension not listed in <paramref name="keptDims"/> (indices into one input's
    /// shape: { 0 } keeps the channel of [C, H, W] images, { 1 } the embedding coordinate of [T, E] texts; none keeps a
    /// single scalar). Accumulated in float64, returned in the references' dtype and device, shaped to broadcast.
    /// </summary>
    public static InputStatistics Estimate(Tensor referenceInputs, int[] keptDims, double minStd = 0.01)
    {
        ArgumentNullException.ThrowIfNull(keptDims);
        if (referenceInputs.dim() < 1 || referenceInputs.shape[0] < 2)
            throw new ArgumentException($"input statistics: at least 2 reference inputs are needed, got shape [{string.Join(", ", referenceInputs.shape)}]");
        long rank = referenceInputs.dim() - 1;
        if (keptDims.Any(d => d < 0 || d >= rank) || keptDims.Distinct().Count() != keptDims.Length)
            throw new ArgumentException($"input statistics: kept dimensions [{string.Join(", ", keptDims)}] must be distinct indices into one input's shape [{string.Join(", ", referenceInputs.shape.Skip(1))}]");
        if (!(minStd > 0)) throw new ArgumentOutOfRangeException(nameof(minStd), minStd, "input statistics: the minimum std must be > 0");
        using var scope = NewDisposeScope();
        var reduced = new[] { 0L }.Concat(Enumerable.Range(1, (int)rank).Where(d => !keptDims.Contains(d - 1)).Select(d => (long)d)).ToArray();
        var x = referenceInputs.to(ScalarType.Float64);
        var mean = x.mean(reduced, keepdim: true);
        long count = reduced.Aggregate(1L, (a, d) => a * referenceInputs.shape[d]);
        var variance = (x - mean).square().sum(reduced, keepdim: true) / (count - 1);
        var std = variance.sqrt().clamp_min(minStd);
        // Drop the leading sample dimension: the statistics broadcast against one input.
        return new InputStatistics(mean.squeeze(0).to(referenceInputs.dtype).MoveToOuterDisposeScope(),
                                   std.squeeze(0).to(referenceInputs.dtype).MoveToOuterDisposeScope(), referenceInputs.shape[0]);
    }

    /// <summary>
    /// Text: mean and unbiased std (at least <paramref name="minStd"/>) per embedding coordinate over the WORDS of
    /// <paramref name="embeddings"/> [N, T, ...] (a text model's [N, T, E], or the [N, T, 1, E] view), i.e. over the
    /// positions before each text's length (<paramref name="lengths"/> [N], int64): the input bottleneck's noise is then
    /// a typical word, not a mixture of words and the zero vectors of &lt;pad&gt;. Shaped [1, ...] to broadcast against one
    /// input ([1, E], or [1, 1, E] for the view): the same noise at every position.
    /// </summary>
    public static InputStatistics EstimateTokens(Tensor embeddings, Tensor lengths, double minStd = 0.01)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(lengths);
        if (embeddings.dim() < 3)
            throw new ArgumentException($"input statistics: token embeddings are [N, T, ...], got [{string.Join(", ", embeddings.shape)}]");
        if (lengths.dim() != 1 || lengths.shape[0] != embeddings.shape[0])
            throw new ArgumentException($"input statistics: one length per text, got lengths [{string.Join(", ", lengths.shape)}] for {embeddings.shape[0]} texts");
        if (!(minStd > 0)) throw new ArgumentOutOfRangeException(nameof(minStd), minStd, "input statistics: the minimum std must be > 0");
        using var scope = NewDisposeScope();
        long n = embeddings.shape[0], t = embeddings.shape[1];
        var rest = embeddings.shape.Skip(2).ToArray();
        long d = rest.Aggregate(1L, (a, b) => a * b);
        var words = TokenScores.PaddingMask(lengths, t, embeddings.device).logical_not().reshape(n * t).nonzero().squeeze(1);
        long count = words.shape[0];
        if (count < 2) throw new ArgumentException($"input statistics: at least 2 words are needed, the lengths give {count}");
        var x = embeddings.to(ScalarType.Float64).reshape(n * t, d).index_select(0, words);
        var mean = x.mean([0L], keepdim: true);
        var std = ((x - mean).square().sum([0L], keepdim: true) / (count - 1)).sqrt().clamp_min(minStd);
        var shape = new[] { 1L }.Concat(rest).ToArray();
        return new InputStatistics(mean.reshape(shape).to(embeddings.dtype).MoveToOuterDisposeScope(),
                                   std.reshape(shape).to(embeddings.dtype).MoveToOuterDisposeScope(), n);
    }

    public void Dispose()
    {
        Mean.Dispose();
        Std.Dispose();
    }
}
