using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// z = x + stdev * eps, eps ~ N(0, I): the noise of SmoothGrad (Smilkov et al. 2017) and the nu measure of
/// the Functional Information paper. <c>stdev</c> is in input units, Captum's <c>stdevs</c>; 0.15 is 15% of
/// the [0, 1] pixel range, SmoothGrad's recommended level.
/// </summary>
public sealed class IsotropicGaussian : IGaussianSampler
{
    public IsotropicGaussian(double stdev = 0.15)
    {
        if (!(stdev > 0)) throw new ArgumentOutOfRangeException(nameof(stdev), stdev, "the noise standard deviation must be positive");
        Stdev = stdev;
    }

    public double Stdev { get; }

    public string Describe() => $"isotropic_gaussian(stdev={Stdev})";

    public SampleSet Draw(Tensor input, long target, int count, Generator generator)
    {
        var shape = input.shape.Skip(1).Prepend(count).ToArray();
        var noise = randn(shape, input.dtype, input.device, generator: generator);
        return new SampleSet(input + noise * Stdev, Weights.Uniform(count, input.device));
    }

    /// <summary>C = stdev^2 I.</summary>
    public Tensor ApplyCovariance(Tensor gradients, Tensor targets) => gradients * (Stdev * Stdev);
}
