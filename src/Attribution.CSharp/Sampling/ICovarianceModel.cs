using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// One covariance Sigma_k per class over the D = C*H*W features of an input, in some
/// <see cref="CovarianceStructure"/>. It turns standard normal noise into N(0, Sigma_k) noise and applies
/// Sigma_k to gradients, without forming a D x D matrix unless the structure is that matrix. The sampler
/// (<see cref="CovarianceGaussian"/>) draws the noise from its generator.
/// </summary>
public interface ICovarianceModel : IDisposable
{
    CovarianceStructure Structure { get; }
    long Classes { get; }
    long Channels { get; }
    long Height { get; }
    long Width { get; }
    /// <summary>D = C*H*W.</summary>
    long Features { get; }
    /// <summary>How many standard normals one sample needs (D, or r + D for low rank plus diagonal).</summary>
    long NoiseDimension { get; }
    /// <summary>Floats held per class (<see cref="CovarianceStructure.Floats"/>).</summary>
    long FloatsPerClass { get; }
    /// <summary>The jitter added to each class's diagonal (the positive floor of d for low rank).</summary>
    IReadOnlyList<double> Jitters { get; }

    /// <summary>Noise [n, D] with covariance Sigma_k from standard normal <paramref name="eps"/> [n, NoiseDimension].</summary>
    Tensor Sample(long cls, Tensor eps);

    /// <summary>Sigma_k g for rows <paramref name="g"/> [m, D].</summary>
    Tensor Apply(long cls, Tensor g);

    /// <summary>Sigma_k as a dense [D, D] float64 matrix: for tests and fidelity on small inputs only.</summary>
    Tensor Dense(long cls);
}
