using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The Gaussian smoothing of a bottleneck mask shared by IBA and InputIBA's input bottleneck (both reference
/// implementations blur sigmoid(alpha) with a depthwise Gaussian, kernel 2 round(2 sigma) + 1, before using it).
/// </summary>
internal static class MaskSmoothing
{
    /// <summary>The normalised kernel [K, 1, k, k], k = 2 round(2 sigma) + 1; null when sigma is 0.</summary>
    public static Tensor? Kernel(long channels, double sigma, ScalarType dtype, Device device)
    {
        if (sigma == 0) return null;
        using var scope = NewDisposeScope();
        long size = 2 * (long)Math.Round(2 * sigma) + 1;
        var offsets = arange(size, ScalarType.Float64) - (size - 1) / 2.0;
        var g = exp(-offsets.square() / (2 * sigma * sigma));
        var kernel2d = g.outer(g);
        kernel2d = kernel2d / kernel2d.sum();
        return kernel2d.to(dtype, device).expand(channels, 1, size, size).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Depthwise blur of <paramref name="mask"/> [B, K, h, w] with reflection padding (replicate padding where the
    /// radius reaches the map's size, which reflection cannot do); the mask itself when the kernel is null.
    /// </summary>
    public static Tensor Apply(Tensor mask, Tensor? kernel)
    {
        if (kernel is null) return mask;
        long pad = (kernel.shape[2] - 1) / 2;
        var mode = pad < mask.shape[2] && pad < mask.shape[3] ? PaddingModes.Reflect : PaddingModes.Replicate;
        var padded = nn.functional.pad(mask, [pad, pad, pad, pad], mode);
        return nn.functional.conv2d(padded, kernel, groups: mask.shape[1]);
    }
}
