using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// Separable Gaussian blur of images [B, C, H, W] with two depthwise conv2d passes (a column kernel, then a
/// row kernel). Borders are padded by replication, so a constant image stays constant whatever the kernel
/// size, also when the kernel is wider than the image (sigma 20 on 28x28 inputs).
/// </summary>
public static class GaussianBlur
{
    /// <summary>Default kernel side for <paramref name="sigma"/>: 2 * ceil(3 sigma) + 1 (+-3 sigma holds 99.7% of the mass).</summary>
    public static int DefaultKernelSize(double sigma) => 2 * (int)Math.Ceiling(3 * sigma) + 1;

    /// <summary>The normalised 1-D kernel of odd length <paramref name="size"/>, float64 on the CPU.</summary>
    public static Tensor Kernel1D(double sigma, int size)
    {
        if (!(sigma > 0)) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "sigma must be positive");
        if (size < 1 || size % 2 == 0) throw new ArgumentOutOfRangeException(nameof(size), size, "kernel size must be odd and positive");
        using var scope = NewDisposeScope();
        var x = arange(size, ScalarType.Float64) - (size - 1) / 2.0;
        var k = (x.square() / (-2 * sigma * sigma)).exp();
        return (k / k.sum()).MoveToOuterDisposeScope();
    }

    /// <summary>Blurs <paramref name="images"/> [B, C, H, W]; same shape, dtype and device.</summary>
    public static Tensor Apply(Tensor images, double sigma, int? kernelSize = null)
    {
        if (images.dim() != 4) throw new ArgumentException($"images must be [B, C, H, W]; got [{string.Join(", ", images.shape)}]");
        int size = kernelSize ?? DefaultKernelSize(sigma);
        using var scope = NewDisposeScope();
        long c = images.shape[1];
        int pad = size / 2;
        var k = Kernel1D(sigma, size).to(images.dtype, images.device);
        var column = k.view(1, 1, size, 1).expand(c, 1, size, 1).contiguous();
        var row = k.view(1, 1, 1, size).expand(c, 1, 1, size).contiguous();
        var h = nn.functional.pad(images, [0, 0, pad, pad], PaddingModes.Replicate);
        h = nn.functional.conv2d(h, column, groups: c);
        h = nn.functional.pad(h, [pad, pad, 0, 0], PaddingModes.Replicate);
        h = nn.functional.conv2d(h, row, groups: c);
        return h.MoveToOuterDisposeScope();
    }
}
