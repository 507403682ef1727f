using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// z ~ N(x, s * Sigma_y): the correlated Gaussian of the Functional Information paper (Thm 4.1), with
/// Sigma_y the covariance of the explained class shared across channels, and s the noise scale
/// (<c>var_spread</c> = 0.15 in the authors' code, which multiplies the covariance). The Cholesky factor is
/// scaled once here (sqrt(s) L), not at every draw. Noise: eps [n, C, D] times (sqrt(s) L_y)^T.
/// </summary>
public sealed class CovarianceGaussian : IGaussianSampler
{
    readonly ClassCovariance covariance;
    readonly Tensor scaledFactors;   // sqrt(s) L_k, [K, D, D]
    readonly Tensor scaledCovariances; // s (Sigma_k + j_k I)

    public CovarianceGaussian(ClassCovariance covariance, double scale = 0.15)
    {
        if (!(scale > 0)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "the covariance scale must be positive");
        this.covariance = covariance;
        Scale = scale;
        scaledFactors = covariance.Factors * Math.Sqrt(scale);
        scaledCovariances = covariance.Covariances * scale;
    }

    public double Scale { get; }

    public string Describe() => $"covariance_gaussian(scale={Scale}, covariance=class, D={covariance.Dimension})";

    public SampleSet Draw(Tensor input, long target, int count, Generator generator)
    {
        using var scope = NewDisposeScope();
        CheckShape(input);
        long c = input.shape[1], d = covariance.Dimension;
        var factor = scaledFactors[target].to(input.device);
        var eps = randn([count, c, d], input.dtype, input.device, generator: generator);
        var noise = eps.matmul(factor.t()).reshape(input.shape.Skip(1).Prepend(count).ToArray());
        var set = new SampleSet(input + noise, Weights.Uniform(count, input.device));
        set.Points.MoveToOuterDisposeScope();
        set.Weights.MoveToOuterDisposeScope();
        return set;
    }

    /// <summary>(s Sigma_t) g per row, grouped by class so that no [m, D, D] gather is formed.</summary>
    public Tensor ApplyCovariance(Tensor gradients, Tensor targets)
    {
        using var scope = NewDisposeScope();
        long m = gradients.shape[0], c = gradients.shape[1], d = covariance.Dimension;
        var flat = gradients.reshape(m, c, d);
        var result = zeros_like(flat);
        foreach (var k in targets.unique().Item1.cpu().data<long>().ToArray())
        {
            var rows = targets.eq(k).nonzero().squeeze(1);
            var sigma = scaledCovariances[k].to(gradients.device);
            result.index_copy_(0, rows, flat.index_select(0, rows).matmul(sigma));
        }
        return result.reshape(gradients.shape).MoveToOuterDisposeScope();
    }

    void CheckShape(Tensor input)
    {
        if (input.shape.Length != 4 || input.shape[2] != covariance.Height || input.shape[3] != covariance.Width)
            throw new ArgumentException($"input [{string.Join(", ", input.shape)}] does not match the covariance's {covariance.Height}x{covariance.Width} images");
    }
}
