using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The smooth mask parametrisation of Extremal Perturbations (Fong, Patrick and Vedaldi 2019, Sec. 3.3; TorchRay's
/// <c>MaskGenerator</c>): a low-resolution parameter grid m_bar (one value every <c>step</c> pixels, grid point i at
/// pixel step * i) is turned into a full-resolution mask by a smooth max-convolution,
/// <code>m(u) = smax_{i in N(u)} k(|u - c_i| / sigma) m_bar_i,   smax(v) = sum_k v_k softmax(T v)_k,  T = 20,</code>
/// with the flat-topped kernel k(z) = exp(-2 max(z - 1/2, 0)^2) and N(u) the (2r + 1)^2 grid points around u,
/// r = 1 + ceil(sigma / step); grid points outside the grid count as 0 (they still take part in the soft max).
/// The result is clamped to [0, 1]. The kernel weights depend only on the geometry and are tabulated once; a pixel's
/// neighbours are a window of the zero-padded grid, so generating a batch of masks is one unfold (a view), one
/// broadcast product, one softmax and one sum.
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

    readonly Tensor weight;      // [cells, side, side, step, cells, step]: kernel weight of each neighbour of each pixel
    readonly long Padding;       // zero cells around the grid: outside grid points count as 0
    readonly long Side;          // 2 r + 1 neighbours a side

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
        long side = 2 * radius + 1;
        Padding = padding; Side = side;
        // Canvas pixel u lies in cell u / step of the unfolded grid, whose neighbours are the zero-padded grid's cells
        // u / step .. u / step + side - 1; its kernel weights depend on u. The table covers whole cells (step - 1 more
        // rows and columns than the canvas, cut off after the soft max) and is laid out [cells, K, step, columns] so that one
        // broadcast product of the unfolded grid with it gives every pixel's neighbour values. K is reduced (soft max, sum)
        // across a strided dimension, as in a gather [B, K, pixels], so the floats are those of that formulation; a row
        // of cells at a time keeps the inner size small (with all pixels inner, the soft max over K missed the cache at
        // 56 px and cost 20 times more than at 28 px for 4 times the pixels).
        long cellRows = GridHeight + 2 * padding - 2 * radius, cellColumns = GridWidth + 2 * padding - 2 * radius;
        long rows = cellRows * step, columns = cellColumns * step, count = side * side;
        var kernel = new double[rows * columns * count];
        for (long uy = 0; uy < rows; uy++)
        for (long ux = 0; ux < columns; ux++)
        {
            long cell = uy / step, phase = uy % step;
            for (long ky = 0; ky < side; ky++)
            for (long kx = 0; kx < side; kx++)
            {
                long gy = uy / step + ky - padding, gx = ux / step + kx - padding;
                double dy = uy - (margin + step * gy), dx = ux - (margin + step * gx);
                double z = Math.Sqrt(dy * dy + dx * dx) / sigma;
                double flat = Math.Max(z - 0.5, 0.0);
                kernel[((cell * count + ky * side + kx) * step + phase) * columns + ux] = Math.Exp(-2.0 * flat * flat);
            }
        }
        weight = tensor(kernel, [cellRows, side, side, step, cellColumns, step], ScalarType.Float64).to(dtype, device);
    }

    public long Height { get; }
    public long Width { get; }
    public int Step { get; }
    public double Sigma { get; }

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
        long b = parameters.shape[0], cellRows = weight.shape[0], step = weight.shape[3], cellColumns = weight.shape[4];
        long k = Side * Side, columns = cellColumns * step;
        // Each cell's neighbourhood is a window of the zero-padded grid: unfold gives them all as a view (no gather),
        // and the broadcast product spreads them over the cell's step x step pixels.
        var windows = nn.functional.pad(parameters, [Padding, Padding, Padding, Padding])
            .unfold(2, Side, 1).unfold(3, Side, 1)                                  // [B, 1, cells, cells, side, side]
            .permute(0, 2, 4, 5, 1, 3)                                              // [B, cells, side, side, 1, cells]
            .contiguous().unsqueeze(6);                                             // [B, cells, side, side, 1, cells, 1]
        // Contiguous windows (1 / step^2 of the values) fix the product's memory layout; with the unfold's scattered
        // strides, and no batch dimension in the weights, the product may come out in another order.
        var values = (windows * weight).view(b, cellRows, k, step * columns);
        var pooled = (values * nn.functional.softmax(values * Coldness, 2)).sum(2)
            .view(b, 1, cellRows * step, columns)
            .narrow(2, 0, PaddedHeight).narrow(3, 0, PaddedWidth);
        return pooled.clamp(0.0, 1.0).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        weight.Dispose();
    }
}
