using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// LIME (Ribeiro, Singh, Guestrin 2016), with Captum's <c>Lime</c> choices: interpretable features are
/// superpixels, here a grid of <c>cellHeight</c> x <c>cellWidth</c> cells (all channels of a cell together;
/// cells at the right and bottom edges are smaller when the size is not a multiple); each sample keeps every
/// superpixel with probability 1/2 (Captum's default perturbation) and sets the others to the baseline; a
/// sample's weight is the exponential kernel on the cosine distance between the input and the perturbed
/// input, exp(-d^2 / (2 w^2)) with d = 1 - cos (Captum's <c>get_exp_kernel_similarity_function('cosine', 1.0)</c>);
/// the surrogate is a weighted linear model with intercept, fitted in closed form (least squares on
/// sqrt(weight)-scaled rows with <c>torch.linalg.lstsq</c>, plus an optional ridge penalty on the
/// coefficients, not on the intercept). A superpixel's coefficient is given to every one of its pixels
/// (Captum's <c>return_input_shape</c>).
/// <para>Defaults: 4x4 cells (7 x 7 = 49 superpixels on 28x28 images); 200 samples, not Captum's 50,
/// because with 49 coefficients and an intercept 50 samples leave no residual degrees of freedom, so the fit
/// interpolates its own sampling noise; ridge 0 (Captum's default surrogate is a Lasso with alpha 0.01, which
/// shrinks every coefficient; plain least squares keeps LIME exact on linear models); kernel width 1.0;
/// baseline 0.</para>
/// </summary>
public sealed class Lime : IAttributionMethod
{
    public Lime(int samples = 200, int cellHeight = 4, int cellWidth = 4, double kernelWidth = 1.0, double ridge = 0.0, double baseline = 0.0)
    {
        if (samples < 2) throw new ArgumentOutOfRangeException(nameof(samples), samples, "lime: at least two samples are needed");
        if (cellHeight < 1 || cellWidth < 1) throw new ArgumentOutOfRangeException(nameof(cellHeight), $"lime: cells must be at least 1x1, got {cellHeight}x{cellWidth}");
        if (!(kernelWidth > 0)) throw new ArgumentOutOfRangeException(nameof(kernelWidth), kernelWidth, "lime: the kernel width must be positive");
        if (ridge < 0) throw new ArgumentOutOfRangeException(nameof(ridge), ridge, "lime: the ridge penalty cannot be negative");
        Samples = samples; CellHeight = cellHeight; CellWidth = cellWidth; KernelWidth = kernelWidth; Ridge = ridge; Baseline = baseline;
    }

    public int Samples { get; }
    public int CellHeight { get; }
    public int CellWidth { get; }
    public double KernelWidth { get; }
    public double Ridge { get; }
    public double Baseline { get; }

    public string Describe() =>
        $"lime: {Samples} samples over {CellHeight}x{CellWidth} superpixels, cosine exponential kernel width {KernelWidth}, ridge {Ridge}, baseline {Baseline}";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        PerturbationEngine.CheckImages(inputs, "lime");
        options.Check();
        using var scope = NewDisposeScope();
        long count = inputs.shape[0], channels = inputs.shape[1], height = inputs.shape[2], width = inputs.shape[3];
        var segments = Segments(height, width, inputs.device);            // [K, H*W] one-hot
        long features = segments.shape[0];
        var keys = options.Keys(count);

        // Each input's masks come from its own generator, so they do not depend on the batch.
        var masks = stack(Enumerable.Range(0, (int)count).Select(i =>
        {
            using var generator = options.GeneratorFor(keys[i], inputs.device);
            return rand(new[] { (long)Samples, features }, ScalarType.Float64, inputs.device, generator: generator).lt(0.5).to(ScalarType.Float64);
        }).ToList(), 0);                                                  // [B, S, K]

        var values = zeros(count * Samples, ScalarType.Float64, inputs.device);
        var weights = zeros(count * Samples, ScalarType.Float64, inputs.device);
        PerturbationEngine.Sweep(model, inputs, targets, Samples, options,
            (i, first, n) =>
            {
                var keep = masks[i].narrow(0, first, n).matmul(segments).to(inputs.dtype).view(n, 1, height, width);
                return inputs.narrow(0, i, 1) * keep + (1 - keep) * Baseline;
            },
            chunk =>
            {
                var rows = chunk.InputIndex * Samples + chunk.PerturbationIndex;
                values.index_copy_(0, rows, chunk.Values.to(ScalarType.Float64));
                weights.index_copy_(0, rows, Similarity(inputs.index_select(0, chunk.InputIndex), chunk.Points, KernelWidth));
            });

        var coefficients = Fit(masks, values.view(count, Samples), weights.view(count, Samples), Ridge);   // [B, K]
        var map = coefficients.matmul(segments).view(count, 1, height, width)
                              .expand(count, channels, height, width).to(inputs.dtype).contiguous();
        return new Explanation(map.MoveToOuterDisposeScope());
    }

    /// <summary>exp(-d^2 / (2 w^2)), d = 1 - cos(x, z) over all features (cos = 0 where either is zero, as torch's eps does).</summary>
    internal static Tensor Similarity(Tensor x, Tensor z, double kernelWidth)
    {
        var a = x.flatten(1).to(ScalarType.Float64);
        var b = z.flatten(1).to(ScalarType.Float64);
        var cos = (a * b).sum(1) / (a.square().sum(1).sqrt() * b.square().sum(1).sqrt()).clamp_min(1e-8);
        var d = 1 - cos;
        return (-d.square() / (2 * kernelWidth * kernelWidth)).exp();
    }

    /// <summary>
    /// Weighted least squares y ~ b0 + masks . b, per input, optionally with ridge on b; returns b [B, K]. Where
    /// <paramref name="absent"/> [B, K] is 1 the feature does not exist for that input (its mask column is 0): one more
    /// row b_k = 0 keeps the system full rank, so the coefficient is exactly 0 and the others are the fit without it
    /// (a rank-deficient least-squares solve is not reliable on every LAPACK driver).
    /// </summary>
    internal static Tensor Fit(Tensor masks, Tensor values, Tensor weights, double ridge, Tensor? absent = null)
    {
        long count = masks.shape[0], samples = masks.shape[1], features = masks.shape[2];
        var root = weights.sqrt().unsqueeze(2);                                             // [B, S, 1]
        var design = cat(new[] { ones(count, samples, 1, ScalarType.Float64, masks.device), masks }, 2) * root;
        var target = values.unsqueeze(2) * root;
        if (absent is not null)
        {
            var pins = cat(new[] { zeros(count, features, 1, ScalarType.Float64, masks.device), diag_embed(absent.to(ScalarType.Float64)) }, 2);
            design = cat(new[] { design, pins }, 1);
            target = cat(new[] { target, zeros(count, features, 1, ScalarType.Float64, masks.device) }, 1);
        }
        if (ridge > 0)
        {
            var penalty = cat(new[] { zeros(features, 1, ScalarType.Float64, masks.device), eye(features, dtype: ScalarType.Float64, device: masks.device) }, 1) * Math.Sqrt(ridge);
            design = cat(new[] { design, penalty.unsqueeze(0).expand(count, features, features + 1) }, 1);
            target = cat(new[] { target, zeros(count, features, 1, ScalarType.Float64, masks.device) }, 1);
        }
        var (solution, _, _, _) = linalg.lstsq(design, target);
        return solution.squeeze(2).narrow(1, 1, features);
    }

    /// <summary>Superpixel membership [K, H*W]: cell (r / cellHeight, c / cellWidth), row-major.</summary>
    Tensor Segments(long height, long width, Device device)
    {
        using var scope = NewDisposeScope();
        long rows = (height + CellHeight - 1) / CellHeight, cols = (width + CellWidth - 1) / CellWidth;
        var r = arange(height, ScalarType.Int64, device).div(CellHeight, RoundingMode.floor);
        var c = arange(width, ScalarType.Int64, device).div(CellWidth, RoundingMode.floor);
        var id = (r.unsqueeze(1) * cols + c.unsqueeze(0)).flatten();                      // [H*W]
        var segments = nn.functional.one_hot(id, rows * cols).t().to(ScalarType.Float64);
        return segments.contiguous().MoveToOuterDisposeScope();
    }
}
