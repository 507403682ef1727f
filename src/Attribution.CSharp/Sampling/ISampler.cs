using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// Points around one input [n, ...] with their weights [n] (float64; 1/n for Monte Carlo, quadrature weights
/// for paths) and, optionally, a multiplier per point [n, ...] (<see cref="Deltas"/>).
/// </summary>
public sealed class SampleSet : IDisposable
{
    public SampleSet(Tensor points, Tensor weights, Tensor? deltas = null) { Points = points; Weights = weights; Deltas = deltas; }
    public Tensor Points { get; }
    public Tensor Weights { get; }
    /// <summary>
    /// A multiplier per point, shaped like <see cref="Points"/>, applied to that point's gradient before the
    /// statistic: (x - b_j) for Expected Gradients, whose baseline b_j differs from point to point. Null when
    /// the points share one multiplier (or none), which the method applies once to the statistic.
    /// </summary>
    public Tensor? Deltas { get; }
    public void Dispose() { Points.Dispose(); Weights.Dispose(); Deltas?.Dispose(); }
}

/// <summary>
/// Where the points of a sampling method come from. Samplers draw on the input's device from the
/// generator they are given, never from the global random state.
/// </summary>
public interface ISampler
{
    /// <summary>Name and parameters, for reports.</summary>
    string Describe();

    /// <summary>Draws <paramref name="count"/> points around <paramref name="input"/> ([1, ...]) explained for class <paramref name="target"/>.</summary>
    SampleSet Draw(Tensor input, long target, int count, Generator generator);
}

/// <summary>
/// A Gaussian sampler z ~ N(x, C): the Fisher statistic (C grad f)_i grad f_i / f needs to apply C.
/// </summary>
public interface IGaussianSampler : ISampler
{
    /// <summary>C g for gradients [m, ...] whose rows explain classes <paramref name="targets"/> [m].</summary>
    Tensor ApplyCovariance(Tensor gradients, Tensor targets);
}

/// <summary>Samplers whose points lie between a baseline and the input (integration paths).</summary>
public interface IBaselineSampler : ISampler
{
    /// <summary>The baseline for inputs [B, ...].</summary>
    Tensor Baseline(Tensor inputs);
}

static class Weights
{
    public static Tensor Uniform(int count, Device device) => full(count, 1.0 / count, ScalarType.Float64, device);
}
