using Attribution.Metrics;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The perturbation pyramid of Extremal Perturbations (Fong et al. 2019, Sec. 3.3; TorchRay's <c>Perturbation</c>
/// with blur): L copies of each input blurred with sigma_l = (1 - l / (L - 1)) sigma_max, l = 0 .. L - 1, so level 0 is
/// the most blurred and level L - 1 the input itself. A mask value m in [0, 1] selects the fractional level
/// m (L - 1), interpolated linearly between its two neighbouring levels: m = 1 keeps the pixel, m = 0 blurs it fully.
/// The gradient reaches m through the interpolation weight (the level index is piecewise constant), as in TorchRay.
/// </summary>
public sealed class BlurPyramid : IDisposable
{
    readonly Tensor levels;   // [B, L, C, H, W]

    /// <param name="inputs">Images [B, C, H, W]; the pyramid is built without gradients.</param>
    /// <param name="levelCount">L, at least 2 (TorchRay: 8).</param>
    /// <param name="maxBlur">sigma_max in pixels, &gt; 0.</param>
    public BlurPyramid(Tensor inputs, int levelCount, double maxBlur)
    {
        if (inputs.dim() != 4) throw new ArgumentException($"the blur pyramid needs images [B, C, H, W], got [{string.Join(", ", inputs.shape)}]");
        if (levelCount < 2) throw new ArgumentOutOfRangeException(nameof(levelCount), levelCount, "the pyramid needs at least 2 levels");
        if (!(maxBlur > 0) || double.IsInfinity(maxBlur)) throw new ArgumentOutOfRangeException(nameof(maxBlur), maxBlur, "the maximum blur must be finite and > 0");
        LevelCount = levelCount;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var copies = new List<Tensor>();
        for (int l = 0; l < levelCount; l++)
        {
            double sigma = (1.0 - (double)l / (levelCount - 1)) * maxBlur;
            // TorchRay's kernel reaches +-ceil(4 sigma); sigma 0 is the input itself.
            copies.Add(sigma > 0 ? GaussianBlur.Apply(inputs, sigma, 2 * (int)Math.Ceiling(4 * sigma) + 1) : inputs.detach().clone());
        }
        levels = stack(copies, 1).MoveToOuterDisposeScope();
    }

    public int LevelCount { get; }

    /// <summary>The perturbed images [B, C, H, W] for masks [B, 1, H, W] in [0, 1] (1: the input, 0: blurred by sigma_max).</summary>
    public Tensor Apply(Tensor mask)
    {
        long b = levels.shape[0], c = levels.shape[2], h = levels.shape[3], w = levels.shape[4];
        if (mask.dim() != 4 || mask.shape[0] != b || mask.shape[1] != 1 || mask.shape[2] != h || mask.shape[3] != w)
            throw new ArgumentException($"masks must be [{b}, 1, {h}, {w}], got [{string.Join(", ", mask.shape)}]");
        using var scope = NewDisposeScope();
        var position = (mask * (LevelCount - 1)).unsqueeze(1);                 // [B, 1, 1, H, W]
        var lower = position.detach().floor();
        var fraction = position - lower;
        var below = lower.to(ScalarType.Int64).expand(b, 1, c, h, w);
        var above = (below + 1).clamp_max(LevelCount - 1);
        var result = (1 - fraction) * levels.gather(1, below) + fraction * levels.gather(1, above);
        return result.squeeze(1).MoveToOuterDisposeScope();
    }

    public void Dispose() => levels.Dispose();
}
