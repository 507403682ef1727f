using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Occlusion (Zeiler and Fergus 2014), with Captum's <c>Occlusion</c> semantics: a window slides over the
/// image from the top-left corner with the given strides (positions 0, s, 2s, ... while the window fits); at
/// each position the window (all channels) is set to the baseline, and f(x) - f(x occluded) is added to every
/// feature under the window. A feature's attribution is that sum divided by the number of windows that
/// covered it (Captum's <c>use_weights</c>). Features no window covers (when (size - window) is not a
/// multiple of the stride) get 0, where Captum would divide 0 by 0.
/// <para>Defaults for 28x28 images (Captum has none, window and strides are required): a 4x4 window with
/// stride 2, 13 x 13 = 169 positions that cover every pixel, each pixel by 1 to 4 windows; baseline 0 (black).
/// A 1x1 window with stride 1 is feature ablation of single pixels.</para>
/// </summary>
public sealed class Occlusion : IAttributionMethod
{
    public Occlusion(int windowHeight = 4, int windowWidth = 4, int strideHeight = 2, int strideWidth = 2, double baseline = 0.0)
    {
        if (windowHeight < 1 || windowWidth < 1) throw new ArgumentOutOfRangeException(nameof(windowHeight), $"occlusion: the window must be at least 1x1, got {windowHeight}x{windowWidth}");
        if (strideHeight < 1 || strideWidth < 1) throw new ArgumentOutOfRangeException(nameof(strideHeight), $"occlusion: strides must be at least 1, got {strideHeight}x{strideWidth}");
        WindowHeight = windowHeight; WindowWidth = windowWidth; StrideHeight = strideHeight; StrideWidth = strideWidth; Baseline = baseline;
    }

    public int WindowHeight { get; }
    public int WindowWidth { get; }
    public int StrideHeight { get; }
    public int StrideWidth { get; }
    public double Baseline { get; }

    public string Describe() =>
        $"occlusion: {WindowHeight}x{WindowWidth} window, stride {StrideHeight}x{StrideWidth}, baseline {Baseline}";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        PerturbationEngine.CheckImages(inputs, "occlusion");
        using var scope = NewDisposeScope();
        long count = inputs.shape[0], channels = inputs.shape[1], height = inputs.shape[2], width = inputs.shape[3];
        var windows = Windows(height, width, inputs.dtype, inputs.device);   // [P, 1, H, W], 1 inside the window
        long positions = windows.shape[0];

        var fx = PerturbationEngine.Values(model, inputs, targets, options);
        var occluded = zeros(count * positions, ScalarType.Float64, inputs.device);
        PerturbationEngine.Sweep(model, inputs, targets, positions, options,
            (i, first, n) =>
            {
                var w = windows.narrow(0, first, n);
                return inputs.narrow(0, i, 1) * (1 - w) + w * Baseline;
            },
            chunk => occluded.index_copy_(0, chunk.InputIndex * positions + chunk.PerturbationIndex, chunk.Values.to(ScalarType.Float64)));

        var drop = fx.to(ScalarType.Float64).unsqueeze(1) - occluded.view(count, positions);        // [B, P]
        var cover = windows.view(positions, height * width).to(ScalarType.Float64);                  // [P, H*W]
        var times = cover.sum(0L);   // 0L: a literal 0 would bind to sum(ScalarType)
        var map = drop.matmul(cover) / times.clamp_min(1.0);
        map = map.view(count, 1, height, width).expand(count, channels, height, width).to(inputs.dtype).contiguous();
        return new Explanation(map.MoveToOuterDisposeScope());
    }

    /// <summary>The window positions as masks [P, 1, H, W], row-major from the top-left corner.</summary>
    Tensor Windows(long height, long width, ScalarType dtype, Device device)
    {
        if (WindowHeight > height || WindowWidth > width)
            throw new ArgumentException($"occlusion: the {WindowHeight}x{WindowWidth} window does not fit in {height}x{width} inputs");
        using var scope = NewDisposeScope();
        var masks = new List<Tensor>();
        for (long r = 0; r + WindowHeight <= height; r += StrideHeight)
            for (long c = 0; c + WindowWidth <= width; c += StrideWidth)
            {
                var m = zeros(new[] { 1L, 1L, height, width }, dtype, device);
                m.narrow(2, r, WindowHeight).narrow(3, c, WindowWidth).fill_(1.0);
                masks.Add(m);
            }
        return cat(masks, 0).MoveToOuterDisposeScope();
    }
}
