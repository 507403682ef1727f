using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// Every element of inputs [B, ...] as a feature: D = the elements of one input, all real, each scored by its own
/// attribution and removed by writing a mask value. Negative perturbation ranks images and waveforms this way (Gat et
/// al. 2022 mask input features, not pixels); it also fits any model whose inputs have no structure the metric should
/// respect.
/// </summary>
public sealed class ElementSpace : IFeatureSpace
{
    readonly nn.Module<Tensor, Tensor> model;
    readonly Tensor inputs;
    readonly Device device;

    /// <param name="model">The classifier of inputs shaped like <paramref name="inputs"/>.</param>
    /// <param name="inputs">The block's inputs [B, ...] (kept on the CPU).</param>
    /// <param name="maskValue">The value of a removed element (0).</param>
    /// <param name="device">Where the model runs.</param>
    public ElementSpace(nn.Module<Tensor, Tensor> model, Tensor inputs, double maskValue, Device device)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.dim() < 2) throw new ArgumentException($"inputs must be [B, ...] with at least one feature dimension; got [{string.Join(", ", inputs.shape)}]", nameof(inputs));
        this.model = model;
        this.inputs = inputs.detach().cpu();
        this.device = device;
        MaskValue = maskValue;
    }

    /// <summary>The value written over a removed element.</summary>
    public double MaskValue { get; }

    public long Count => inputs.shape[0];
    public long Slots => inputs.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
    public Tensor? Real => null;
    public string Substrate => MaskValue == 0.0 ? "zero" : $"constant({MaskValue})";
    public Tensor Inputs => inputs;

    public Tensor Scores(Tensor maps)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (!maps.shape.SequenceEqual(inputs.shape))
            throw new ArgumentException($"maps [{string.Join(", ", maps.shape)}] must have the inputs' shape [{string.Join(", ", inputs.shape)}]", nameof(maps));
        return maps.detach().cpu().reshape(Count, Slots);
    }

    public Tensor Perturb(Tensor atSubstrate)
    {
        FeatureSpace.CheckMask(this, atSubstrate);
        using var scope = NewDisposeScope();
        long n = Count, k = atSubstrate.shape[1];
        var masked = inputs.reshape(n, 1, Slots).expand(n, k, Slots).masked_fill(atSubstrate.cpu(), MaskValue);
        return masked.contiguous().view([n * k, .. inputs.shape.Skip(1)]).MoveToOuterDisposeScope();
    }

    public Tensor Logits(Tensor modelInputs, int batchSize) => Training.Logits(model, modelInputs, device, batchSize);

    public IFeatureSpace Rows(long[] rows) => new ElementSpace(model, FeatureSpace.Take(inputs, rows), MaskValue, device);
}
