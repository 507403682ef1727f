using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The Gaussian smoothing of a bottleneck mask shared by IBA and InputIBA's input bottleneck (both reference
/// implementations blur sigmoid(alpha) with a depthwise Gaussian, kernel 2 round(2 sigma) + 1, reflection padding).
/// The 2-D kernel is the outer product of a 1-D one and reflection padding acts on rows and columns separately, so the
/// blur is the linear map M -> A_h M A_w^T, with A the [n, n] matrix of the padded 1-D convolution. We apply it as two
/// matrix products rather than a grouped conv2d: on the CPU the conv2d's backward pass through a one-channel mask gave
/// results that differed between identical runs (seen in InputIBA's determinism test), the products do not.
/// </summary>
internal static class MaskSmoothing
{
    /// <summary>The smoothing operator for sigma; null when sigma is 0 (no smoothing).</summary>
    public sealed record Kernel(double Sigma, double[] Weights);

    /// <summary>The normalised 1-D weights, length 2 round(2 sigma) + 1; null when sigma is 0.</summary>
    public static Kernel? For(double sigma)
    {
        if (sigma == 0) return null;
        int size = 2 * (int)Math.Round(2 * sigma) + 1;
        var w = Enumerable.Range(0, size).Select(i => Math.Exp(-Math.Pow(i - (size - 1) / 2.0, 2) / (2 * sigma * sigma))).ToArray();
        double total = w.Sum();
        return new Kernel(sigma, w.Select(v => v / total).ToArray());
    }

    /// <summary>
    /// Blurs <paramref name="mask"/> [B, K, h, w] over its last two dimensions, each channel on its own, with reflection
    /// padding (replicate padding where the radius reaches the size, which reflection cannot do); the mask itself when
    /// <paramref name="kernel"/> is null.
    /// </summary>
    public static Tensor Apply(Tensor mask, Kernel? kernel)
    {
        if (kernel is null) return mask;
        using var scope = NewDisposeScope();
        long h = mask.shape[^2], w = mask.shape[^1];
        var rows = Operator(kernel.Weights, h, mask.dtype, mask.device);
        var columns = Operator(kernel.Weights, w, mask.dtype, mask.device);
        return rows.matmul(mask).matmul(columns.t()).MoveToOuterDisposeScope();
    }

    /// <summary>A [n, n] with (A v)_i = sum_o weights[o] v[pad(i + o - r)]: the padded 1-D convolution as a matrix.</summary>
    static Tensor Operator(double[] weights, long n, ScalarType dtype, Device device)
    {
        int radius = (weights.Length - 1) / 2;
        bool reflect = radius < n;
        var a = new double[n * n];
        for (long i = 0; i < n; i++)
            for (int o = 0; o < weights.Length; o++)
            {
                long j = i + o - radius;
                if (reflect) j = j < 0 ? -j : j >= n ? 2 * (n - 1) - j : j;
                else j = Math.Clamp(j, 0, n - 1);
                a[i * n + j] += weights[o];
            }
        return tensor(a, [n, n], ScalarType.Float64).to(dtype, device);
    }
}
