using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// Points uniform on the sphere of radius epsilon around x in the flattened input space:
/// z = x + epsilon * u / |u|, u ~ N(0, I) (the direction of a standard Gaussian is uniform on the sphere).
/// This is the epsilon-sphere S_x of Negative Flux Aggregation (Li et al. 2023, Sec. 3, Algorithm 1), whose
/// random points x^(0) start the search for negative flux; epsilon = 0.1 is the paper's setting (Sec. 5.1,
/// ablation over 0.05, 0.1, 0.2 in Table 2). epsilon is in input units over all features together, so the
/// per-feature displacement is about epsilon / sqrt(D).
/// </summary>
public sealed class EpsilonSphere : ISampler
{
    public EpsilonSphere(double epsilon = 0.1)
    {
        if (!(epsilon > 0) || double.IsInfinity(epsilon)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "the radius must be positive and finite");
        Epsilon = epsilon;
    }

    /// <summary>The radius, in input units (Euclidean norm over all features of one input).</summary>
    public double Epsilon { get; }

    public string Describe() => $"epsilon_sphere(epsilon={Epsilon})";

    public SampleSet Draw(Tensor input, long target, int count, Generator generator)
    {
        using var scope = NewDisposeScope();
        var shape = input.shape.Skip(1).Prepend(count).ToArray();
        // normalised in float64 so that |z - x| = epsilon holds to the input dtype's rounding
        var u = randn(shape, ScalarType.Float64, input.device, generator: generator);
        var norms = u.flatten(1).norm(1, keepdim: true).view(Broadcastable(count, shape.Length));
        var set = new SampleSet(input + (u / norms * Epsilon).to(input.dtype), Weights.Uniform(count, input.device));
        set.Points.MoveToOuterDisposeScope();
        set.Weights.MoveToOuterDisposeScope();
        return set;
    }

    static long[] Broadcastable(int count, int rank)
    {
        var s = Enumerable.Repeat(1L, rank).ToArray();
        s[0] = count;
        return s;
    }
}
