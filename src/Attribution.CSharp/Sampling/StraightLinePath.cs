using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// Points baseline + alpha (x - baseline) at the nodes of a quadrature rule, weighted by its weights:
/// the path of Integrated Gradients (Sundararajan et al. 2017). The baseline is a constant (0 = black).
/// </summary>
public sealed class StraightLinePath : IBaselineSampler
{
    readonly double[] alphas;
    readonly double[] weights;

    public StraightLinePath(int steps = 50, IntegrationRule rule = IntegrationRule.GaussLegendre, double baseline = 0.0)
    {
        (alphas, weights) = Quadrature.Rule(rule, steps);
        Steps = steps; Rule = rule; BaselineValue = baseline;
    }

    public int Steps { get; }
    public IntegrationRule Rule { get; }
    public double BaselineValue { get; }

    public string Describe() => $"straight_line_path(steps={Steps}, rule={Rule}, baseline={BaselineValue})";

    public Tensor Baseline(Tensor inputs) => full_like(inputs, BaselineValue);

    public SampleSet Draw(Tensor input, long target, int count, Generator generator)
    {
        if (count != Steps) throw new ArgumentException($"the path has {Steps} nodes, {count} were asked for");
        using var scope = NewDisposeScope();
        var shape = Enumerable.Repeat(1L, input.shape.Length).ToArray();
        shape[0] = count;
        var a = tensor(alphas, ScalarType.Float64, input.device).to(input.dtype).view(shape);
        var baseline = Baseline(input);
        var set = new SampleSet(baseline + a * (input - baseline), tensor(weights, ScalarType.Float64, input.device));
        set.Points.MoveToOuterDisposeScope();
        set.Weights.MoveToOuterDisposeScope();
        return set;
    }
}
