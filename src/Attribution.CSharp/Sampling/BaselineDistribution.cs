using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// The points of Expected Gradients (Erion et al. 2021; Captum's GradientShap without its extra noise):
/// z = b + alpha (x - b) with b drawn uniformly from a set of reference inputs [R, ...] (usually training
/// inputs) and alpha ~ U(0, 1). The attribution E_{b, alpha}[(x - b) (.) grad f(z)] needs the multiplier
/// x - b per point, so each draw carries it in <see cref="SampleSet.Deltas"/>; with the Mean statistic the sum
/// of the map is f(x) - E_b[f(b)] in expectation (completeness). Integrated Gradients is the special case of a
/// single reference, integrated by Monte Carlo instead of quadrature.
/// </summary>
public sealed class BaselineDistribution : ISampler
{
    readonly Tensor references;

    /// <param name="references">Reference inputs [R, ...], each shaped like one input. Held, not copied: the
    /// caller keeps it alive (and disposes it) while the sampler is used.</param>
    public BaselineDistribution(Tensor references)
    {
        if (references.shape.Length < 2 || references.shape[0] < 1)
            throw new ArgumentException($"references must be [R, ...] with R >= 1, got [{string.Join(", ", references.shape)}]");
        this.references = references;
    }

    /// <summary>R, the number of reference inputs.</summary>
    public long Count => references.shape[0];

    public string Describe() => $"baseline_distribution(references={Count})";

    public SampleSet Draw(Tensor input, long target, int count, Generator generator)
    {
        using var scope = NewDisposeScope();
        if (!input.shape.Skip(1).SequenceEqual(references.shape.Skip(1)))
            throw new ArgumentException($"input [{string.Join(", ", input.shape)}] does not match the references [{string.Join(", ", references.shape)}]");
        var which = randint(0, Count, [count], ScalarType.Int64, input.device, generator: generator).to(references.device);
        var alphaShape = Enumerable.Repeat(1L, input.shape.Length).ToArray();
        alphaShape[0] = count;
        var alpha = rand(count, ScalarType.Float64, input.device, generator: generator).to(input.dtype).view(alphaShape);
        var b = references.index_select(0, which).to(input.dtype).to(input.device);
        var delta = input - b;
        var set = new SampleSet(b + alpha * delta, Weights.Uniform(count, input.device), delta);
        set.Points.MoveToOuterDisposeScope();
        set.Weights.MoveToOuterDisposeScope();
        set.Deltas!.MoveToOuterDisposeScope();
        return set;
    }
}
