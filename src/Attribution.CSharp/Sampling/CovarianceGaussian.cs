using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// z ~ N(x, s * Sigma_y): the correlated Gaussian of the Functional Information paper (Thm 4.1), with
/// Sigma_y the covariance of the explained class in some <see cref="CovarianceStructure"/> (shared across
/// channels by default, App. B), and s the noise scale (<c>var_spread</c> = 0.15 in the authors' code, which
/// multiplies the covariance). The scale is applied to the noise (sqrt(s)) and to C g (s), never folded into
/// a copy of the factors, so the sampler holds no tensor of its own.
/// </summary>
public sealed class CovarianceGaussian : IGaussianSampler
{
    readonly double root;

    /// <summary>The class covariance shared across channels (the paper's choice).</summary>
    public CovarianceGaussian(ClassCovariance covariance, double scale = 0.15) : this(CovarianceModels.FromClassCovariance(covariance), scale) { }

    /// <summary>Any covariance structure (<see cref="CovarianceModels"/> builds them); the caller disposes the model.</summary>
    public CovarianceGaussian(ICovarianceModel covariance, double scale = 0.15)
    {
        if (!(scale > 0)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "the covariance scale must be positive");
        Covariance = covariance;
        Scale = scale;
        root = Math.Sqrt(scale);
    }

    public double Scale { get; }
    public ICovarianceModel Covariance { get; }

    public string Describe() => Covariance.Structure is CovarianceStructure.SharedAcrossChannels
        ? $"covariance_gaussian(scale={Scale}, covariance=class, D={Covariance.Height * Covariance.Width})"
        : $"covariance_gaussian(scale={Scale}, covariance=class, structure={Covariance.Structure.Name}, D={Covariance.Features})";

    public SampleSet Draw(Tensor input, long target, int count, Generator generator)
    {
        using var scope = NewDisposeScope();
        CheckShape(input);
        var eps = randn([count, Covariance.NoiseDimension], input.dtype, input.device, generator: generator);
        var noise = (Covariance.Sample(target, eps) * root).reshape(input.shape.Skip(1).Prepend(count).ToArray());
        var set = new SampleSet(input + noise, Weights.Uniform(count, input.device));
        set.Points.MoveToOuterDisposeScope();
        set.Weights.MoveToOuterDisposeScope();
        return set;
    }

    /// <summary>(s Sigma_t) g per row, grouped by class so that no per-row covariance is gathered.</summary>
    public Tensor ApplyCovariance(Tensor gradients, Tensor targets)
    {
        using var scope = NewDisposeScope();
        long m = gradients.shape[0];
        var flat = gradients.reshape(m, Covariance.Features);
        var result = zeros_like(flat);
        foreach (var k in targets.unique().Item1.cpu().data<long>().ToArray())
        {
            var rows = targets.eq(k).nonzero().squeeze(1);
            result.index_copy_(0, rows, Covariance.Apply(k, flat.index_select(0, rows)) * Scale);
        }
        return result.reshape(gradients.shape).MoveToOuterDisposeScope();
    }

    void CheckShape(Tensor input)
    {
        if (input.shape.Length != 4 || input.shape[1] != Covariance.Channels || input.shape[2] != Covariance.Height || input.shape[3] != Covariance.Width)
            throw new ArgumentException($"input [{string.Join(", ", input.shape)}] does not match the covariance's {Covariance.Channels}x{Covariance.Height}x{Covariance.Width} inputs");
    }
}
