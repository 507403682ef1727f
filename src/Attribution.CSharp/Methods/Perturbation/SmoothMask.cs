using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The smooth mask parametrisation of Extremal Perturbations (Fong, Patrick and Vedaldi 2019, Sec. 3.3; TorchRay's
/// <c>MaskGenerator</c>): a low-resolution parameter grid m_bar (one value every <c>step</c> pixels, grid point i at
/// pixel step * i) is turned into a full-resolution mask by a smooth max-convolution,
/// <code>m(u) = smax_{i in N(u)} k(|u - c_i| / sigma) m_bar_i,   smax(v) = sum_k v_k softmax(T v)_k,  T = 20,</code>
/// with the flat-topped kernel k(z) = exp(-2 max(z - 1/2, 0)^2) and N(u) the (2r + 1)^2 grid points around u,
/// r = 1 + ceil(sigma / step); grid points outside the grid count as 0 (they still take part in the soft max).
/// The result is clamped to [0, 1]. Neighbourhoods and kernel weights depend only on the geometry and are tabulated
/// once; generating a batch of masks is one gather, one softmax and one sum.
/// <para>The tables follow TorchRay's geometry: the mask is generated on a padded canvas of
/// <see cref="PaddedHeight"/> x <see cref="PaddedWidth"/> pixels (TorchRay's <c>shape_out</c>, a margin of about sigma
/// pixels around the image), grid centre i at margin + step * i in the canvas' coordinates, and the image is the
/// window at offset <see cref="Offset"/> = round(margin) (round-half-to-even). <see cref="GenerateWithMargin"/> returns
/// the whole canvas (the area constraint of <see cref="ExtremalPerturbation"/> sorts it, as TorchRay does),
/// <see cref="Generate"/> the image window.</para>
/// </summary>
public sealed class SmoothMask : IDisposable
{
    /// <summary>The soft max's inverse temperature (TorchRay's <c>coldness</c>).</summary>
    public const double Coldness = 20.0;

    readonly Tensor neighbour;   // [H*W, K] flat grid index of each neighbour, GridHeight*GridWidth for "outside"
    readonly Tensor weight;      // [H*W, K] kernel weight of each neighbour

    public SmoothMask(long height, long width, int step, double sigma, Device device, ScalarType dtype)
    {
        if (height < 1 || width < 1) throw new ArgumentOutOfRangeException(nameof(height), $"mask size {height}x{width} is empty");
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "the parameter grid step must be at least 1 pixel");
        if (!(sigma > 0) || double.IsInfinity(sigma)) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "the mask smoothing sigma must be finite and > 0");
        Height = height; Width = width; Step = step; Sigma = sigma;
        GridHeight = (height + step - 1) / step;
        GridWidth = (width + step - 1) / step;
        double margin = sigma;
        long padding = 1 + (long)Math.Ceiling((margin + sigma) / step);
        long radius = 1 + (long)Math.Ceiling(sigma / step);
        Offset = (long)Math.Round(margin, MidpointRounding.ToEven);
        // TorchRay's shape_out: the unfolded grid (shape_in + 2 padding - 2 radius cells), upsampled by step, less step - 1.
        PaddedHeight = step * (GridHeight + 2 * padding - 2 * radius) - step + 1;
        PaddedWidth = step * (GridWidth + 2 * padding - 2 * radius) - step + 1;
        if (Offset + height > PaddedHeight || Offset + width > PaddedWidth)
            throw new ArgumentException($"the padded mask {PaddedHeight}x{PaddedWidth} does not hold the image {height}x{width} at offset {Offset}");
        long side = 2 * radius + 1, count = side * side, pixels = PaddedHeight * PaddedWidth, outside = GridHeight * GridWidth;
        var index = new long[count * pixels];
        var kernel = new double[count * pixels];
        for (long uy = 0; uy < PaddedHeight; uy++)
        for (long ux = 0; ux < PaddedWidth; ux++)
        {
            // (uy, ux): a pixel of the padded canvas; its nearest-upsampled grid cell is u / step.
            for (long ky = 0; ky < side; ky++)
            for (long kx = 0; kx < side; kx++)
            {
                long gy = uy / step + ky - padding, gx = ux / step + kx - padding;
                double dy = uy - (margin + step * gy), dx = ux - (margin + step * gx);
                double z = Math.Sqrt(dy * dy + dx * dx) / sigma;
                double flat = Math.Max(z - 0.5, 0.0);
                long k = ky * side + kx, at = (uy * PaddedWidth + ux) * count + k;
                kernel[at] = Math.Exp(-2.0 * flat * flat);
                index[at] = gy >= 0 && gy < GridHeight && gx >= 0 && gx < GridWidth ? gy * GridWidth + gx : outside;
            }
        }
        neighbour = tensor(index, [pixels, count], ScalarType.Int64).to(device);
        weight = tensor(kernel, [pixels, count], ScalarType.Float64).to(dtype, device);
    }

    public long Height { get; }
    public long Width { get; }
    public int Step { get; }
    public double Sigma { get; }

    /// <summary>Elements of one mask's neighbour table (padded pixels x neighbours): the size of its largest intermediates.</summary>
    public long ElementsPerMask => neighbour.numel();

    /// <summary>Rows of the parameter grid: ceil(Height / Step).</summary>
    public long GridHeight { get; }

    /// <summary>Columns of the parameter grid: ceil(Width / Step).</summary>
    public long GridWidth { get; }

    /// <summary>Rows of the padded canvas (TorchRay's <c>shape_out</c>).</summary>
    public long PaddedHeight { get; }

    /// <summary>Columns of the padded canvas.</summary>
    public long PaddedWidth { get; }

    /// <summary>Row and column of the image's top-left pixel on the padded canvas: round(margin), margin = sigma.</summary>
    public long Offset { get; }

    /// <summary>Masks [B, 1, Height, Width] in [0, 1] from parameters [B, 1, GridHeight, GridWidth]: the image window of <see cref="GenerateWithMargin"/>; differentiable.</summary>
    public Tensor Generate(Tensor parameters)
    {
        using var scope = NewDisposeScope();
        return Window(GenerateWithMargin(parameters)).MoveToOuterDisposeScope();
    }

    /// <summary>The image window [B, 1, Height, Width] of padded masks [B, 1, PaddedHeight, PaddedWidth] (a view).</summary>
    public Tensor Window(Tensor padded) => padded.narrow(2, Offset, Height).narrow(3, Offset, Width);

    /// <summary>Masks on the whole padded canvas, [B, 1, PaddedHeight, PaddedWidth] in [0, 1]; differentiable.</summary>
    public Tensor GenerateWithMargin(Tensor parameters)
    {
        if (parameters.dim() != 4 || parameters.shape[1] != 1 || parameters.shape[2] != GridHeight || parameters.shape[3] != GridWidth)
            throw new ArgumentException($"mask parameters must be [B, 1, {GridHeight}, {GridWidth}], got [{string.Join(", ", parameters.shape)}]");
        using var scope = NewDisposeScope();
        long b = parameters.shape[0], pixels = neighbour.shape[0], k = neighbour.shape[1];
        // A trailing zero stands for every grid point outside the grid. The neighbours are the last axis, so that the
        // soft max reduces over contiguous memory (3x faster than over a strided axis, forward and backward).
        var padded = cat([parameters.reshape(b, GridHeight * GridWidth), zeros(b, 1, parameters.dtype, parameters.device)], 1);
        var values = padded.index_select(1, neighbour.flatten()).view(b, pixels, k) * weight;
        var pooled = (values * nn.functional.softmax(values * Coldness, 2)).sum(2);
        return pooled.clamp(0.0, 1.0).view(b, 1, PaddedHeight, PaddedWidth).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        neighbour.Dispose();
        weight.Dispose();
    }
}
