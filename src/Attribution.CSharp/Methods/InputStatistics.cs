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

    public void Dispose()
    {
        Mean.Dispose();
        Std.Dispose();
    }
}
