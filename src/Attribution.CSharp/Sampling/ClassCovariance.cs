using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// Per-class covariance of the pixels, shared across channels (Functional Information, App. B): every
/// channel of every training image of class k is one sample of an H*W vector, and Sigma_k is their
/// unbiased covariance. Sigma_k is rarely positive definite (constant border pixels, fewer images than
/// pixels), so a jitter j*I is added, starting from <c>relativeJitter</c> times the mean diagonal and
/// multiplied by 10 until the Cholesky factorisation succeeds. The factor is computed once per class.
/// </summary>
public sealed class ClassCovariance : IDisposable
{
    ClassCovariance(Tensor covariances, Tensor factors, double[] jitters, int[] counts, long channels, long height, long width)
    {
        Covariances = covariances; Factors = factors; Jitters = jitters; Counts = counts;
        Channels = channels; Height = height; Width = width;
    }

    /// <summary>Sigma_k + j_k I, [K, D, D], D = H*W (the matrix actually sampled from).</summary>
    public Tensor Covariances { get; }
    /// <summary>Lower Cholesky factors L_k with L_k L_k^T = Sigma_k + j_k I, [K, D, D].</summary>
    public Tensor Factors { get; }
    /// <summary>The jitter added to each class's diagonal.</summary>
    public IReadOnlyList<double> Jitters { get; }
    /// <summary>Images per class used in the estimate.</summary>
    public IReadOnlyList<int> Counts { get; }
    public long Channels { get; }
    public long Height { get; }
    public long Width { get; }
    public long Dimension => Height * Width;

    /// <summary>Estimates one covariance per class from images [N, C, H, W] and labels [N].</summary>
    public static ClassCovariance Estimate(Tensor images, Tensor labels, int classes, double relativeJitter = 1e-5, Device? device = null)
    {
        if (images.shape.Length != 4) throw new ArgumentException($"images must be [N, C, H, W], got [{string.Join(", ", images.shape)}]");
        device ??= images.device;
        long c = images.shape[1], h = images.shape[2], w = images.shape[3], d = h * w;
        var counts = new int[classes];
        using var scope = NewDisposeScope();
        var sigmas = new List<Tensor>();
        for (int k = 0; k < classes; k++)
        {
            var rows = images.index_select(0, labels.eq(k).nonzero().squeeze(1)).to(ScalarType.Float64).to(device).reshape(-1, d);
            counts[k] = (int)(rows.shape[0] / c);
            if (rows.shape[0] < 2) throw new ArgumentException($"class {k} has {counts[k]} images: at least 2 are needed to estimate its covariance");
            var centred = rows - rows.mean([0], keepdim: true);
            sigmas.Add(centred.t().matmul(centred) / (rows.shape[0] - 1));
        }
        return Factorise(stack(sigmas), relativeJitter, counts, c, h, w);
    }

    /// <summary>Wraps given covariances [K, D, D] (D = height * width), e.g. from another estimator or a test.</summary>
    public static ClassCovariance FromCovariances(Tensor covariances, long channels, long height, long width, double relativeJitter = 0.0)
    {
        if (covariances.shape.Length != 3 || covariances.shape[1] != height * width || covariances.shape[2] != height * width)
            throw new ArgumentException($"covariances must be [K, {height * width}, {height * width}], got [{string.Join(", ", covariances.shape)}]");
        using var scope = NewDisposeScope();
        return Factorise(covariances.to(ScalarType.Float64), relativeJitter, new int[covariances.shape[0]], channels, height, width);
    }

    /// <summary>
    /// Rebuilds a stored estimate (a cache artefact): the jittered covariances and their factors [K, D, D] as
    /// <see cref="Estimate"/> made them, with their jitters and counts. Nothing is recomputed; the shapes are checked.
    /// The tensors are taken over (detached from any dispose scope); <see cref="Dispose"/> frees them.
    /// </summary>
    public static ClassCovariance Restore(Tensor covariances, Tensor factors, double[] jitters, int[] counts, long channels, long height, long width)
    {
        long d = height * width, k = jitters.Length;
        foreach (var (name, t) in new[] { ("covariances", covariances), ("factors", factors) })
            if (t.shape.Length != 3 || t.shape[0] != k || t.shape[1] != d || t.shape[2] != d)
                throw new ArgumentException($"stored {name} are [{string.Join(", ", t.shape)}], expected [{k}, {d}, {d}] for {k} classes of {height}x{width}");
        if (counts.Length != k) throw new ArgumentException($"{counts.Length} counts for {k} classes");
        return new ClassCovariance(covariances.to(ScalarType.Float32).DetachFromDisposeScope(), factors.to(ScalarType.Float32).DetachFromDisposeScope(),
                                   jitters, counts, channels, height, width);
    }

    static ClassCovariance Factorise(Tensor sigmas, double relativeJitter, int[] counts, long c, long h, long w)
    {
        if (relativeJitter < 0) throw new ArgumentOutOfRangeException(nameof(relativeJitter), relativeJitter, "jitter must be non-negative");
        long classes = sigmas.shape[0];
        var covariances = new List<Tensor>();
        var factors = new List<Tensor>();
        var jitters = new double[classes];
        for (int k = 0; k < classes; k++)
        {
            var (jittered, factor, jitter) = CovarianceModels.JitteredCholesky(sigmas[k], relativeJitter, $"class {k}");
            covariances.Add(jittered.to(ScalarType.Float32));
            factors.Add(factor.to(ScalarType.Float32));
            jitters[k] = jitter;
        }
        var all = stack(covariances).MoveToOuterDisposeScope();
        var allFactors = stack(factors).MoveToOuterDisposeScope();
        return new ClassCovariance(all, allFactors, jitters, counts, c, h, w);
    }

    public void Dispose() { Covariances.Dispose(); Factors.Dispose(); }
}
