using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// What a metric of one method's maps is given: the explained model (the function methods explain, on method inputs
/// [N, ...]), the explained inputs, the method's maps of them (same shape), the explained class of each input, a seed
/// for any random draw, the device and the batch size for forward passes. Tensors are on <see cref="Device"/>.
/// </summary>
public sealed record MetricInputs(nn.Module<Tensor, Tensor> Model, Tensor Inputs, Tensor Maps, Tensor Targets, long Seed, Device Device, int BatchSize);

/// <summary>A curve over the shared x axis of an evaluation, with its area when it has one (NaN otherwise).</summary>
public sealed record MetricCurve(string Name, double[] Values, double Auc);

/// <summary>
/// What a metric found: named scalars (the report's table, metrics.json and .csv), and optionally curves over a shared
/// x axis (drawn as PNGs).
/// </summary>
public sealed record MetricEvaluation(IReadOnlyList<KeyValuePair<string, double>> Scalars, string XLabel, double[] X, IReadOnlyList<MetricCurve> Curves)
{
    /// <summary>Scalars only.</summary>
    public MetricEvaluation(IReadOnlyList<KeyValuePair<string, double>> scalars) : this(scalars, "", [], []) { }

    /// <summary>
    /// Optional values of each input (one per explained input, in the order given), by name. Values named like a
    /// scalar must be values whose mean is that scalar: exports (<c>attribution export</c>) state them so, and a reader
    /// outside .NET checks the scalar from them.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, double[]>> PerInput { get; init; } = [];
}

/// <summary>
/// A metric of one method's maps, for metrics defined outside the toolkit: implement it (C# or F#), give it a registry
/// entry from your own code (<c>MetricEntry.custom</c> and <c>MetricRegistry.register</c> in the experiment layer), and
/// specs name it like a shipped metric. Evaluate must not depend on the order or batching of the inputs.
/// </summary>
public interface IMetric
{
    /// <summary>Evaluates the maps of one method on the explained inputs.</summary>
    MetricEvaluation Evaluate(MetricInputs inputs);
}

/// <summary>
/// A metric whose results are values of each input (scores by name, one per input), for metrics defined outside the
/// toolkit that should scale: the runner evaluates it a block of inputs at a time, so a step's maps are never whole in
/// memory, and reports each name's mean over the inputs (NaN values left out) with a bootstrap interval, keeping the
/// values for export. <see cref="IMetric.Evaluate"/> comes with it (every input as one block).
/// </summary>
/// <remarks>
/// A block holds the explained inputs <c>firstInput</c> .. <c>firstInput + n - 1</c>. A random draw should be derived
/// from <see cref="MetricInputs.Seed"/> and each input's index (<c>firstInput + i</c>), not from its place in the block,
/// so that an input's values do not depend on how the inputs were cut into blocks.
/// </remarks>
public interface IPerInputMetric : IMetric
{
    /// <summary>The values of each input of the block, by name: every array one value per input of the block.</summary>
    IReadOnlyList<KeyValuePair<string, double[]>> EvaluateInputs(MetricInputs block, int firstInput);

    MetricEvaluation IMetric.Evaluate(MetricInputs inputs)
    {
        var values = EvaluateInputs(inputs, 0);
        var scalars = values.Select(kv => new KeyValuePair<string, double>(kv.Key, MeanOfDefined(kv.Value))).ToArray();
        return new MetricEvaluation(scalars) { PerInput = values };
    }

    /// <summary>The mean of the values that are not NaN (NaN when none is).</summary>
    static double MeanOfDefined(IReadOnlyList<double> values) =>
        values.Where(v => !double.IsNaN(v)).DefaultIfEmpty(double.NaN).Average();
}
