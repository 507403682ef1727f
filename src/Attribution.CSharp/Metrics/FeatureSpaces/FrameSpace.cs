using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// The frames of framed signals [B, F, ...] (a waveform cut into F frames of consecutive samples, as the audio view
/// holds it): D = F slots, all real. A frame is removed whole, every sample set to <c>Value</c> (0: silence), and
/// scored by its attribution summed over its samples (in float64), so insertion and deletion play over stretches of
/// time and Sensitivity-N masks sets of frames, where masking single samples would leave the sound nearly intact.
/// </summary>
public sealed class FrameSpace : IFeatureSpace
{
    readonly nn.Module<Tensor, Tensor> model;
    readonly Tensor inputs;
    readonly double value;
    readonly Device device;

    /// <param name="model">The classifier of framed inputs [N, F, ...].</param>
    /// <param name="inputs">The block's framed inputs [B, F, ...] (kept on the CPU).</param>
    /// <param name="value">What a removed frame's samples become (0, silence).</param>
    /// <param name="device">Where the model runs.</param>
    public FrameSpace(nn.Module<Tensor, Tensor> model, Tensor inputs, double value, Device device)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.dim() < 3) throw new ArgumentException($"inputs must be framed, [B, F, ...]; got [{string.Join(", ", inputs.shape)}]", nameof(inputs));
        this.model = model;
        this.inputs = inputs.detach().cpu();
        this.value = value;
        this.device = device;
    }

    public long Count => inputs.shape[0];
    public long Slots => inputs.shape[1];
    public Tensor? Real => null;
    public string Substrate => value == 0.0 ? "silence" : $"constant({value})";
    public Tensor Inputs => inputs;

    public Tensor Scores(Tensor maps)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (!maps.shape.SequenceEqual(inputs.shape))
            throw new ArgumentException($"maps [{string.Join(", ", maps.shape)}] must have the inputs' shape [{string.Join(", ", inputs.shape)}]", nameof(maps));
        return maps.detach().cpu().to(ScalarType.Float64).reshape(inputs.shape[0], inputs.shape[1], -1).sum(2);
    }

    public Tensor Perturb(Tensor atSubstrate)
    {
        FeatureSpace.CheckMask(this, atSubstrate);
        using var scope = NewDisposeScope();
        long n = inputs.shape[0], k = atSubstrate.shape[1];
        var frame = inputs.shape.Skip(1).ToArray();                                          // [F, ...]
        var expanded = new[] { n, k }.Concat(frame).ToArray();
        // one flag per frame, broadcast over its samples
        var changed = atSubstrate.cpu().reshape(new[] { atSubstrate.shape[0], k, frame[0] }.Concat(Enumerable.Repeat(1L, frame.Length - 1)).ToArray());
        var xs = inputs.unsqueeze(1).expand(expanded);
        var result = xs.masked_fill(changed, value);
        return result.contiguous().view(new[] { n * k }.Concat(frame).ToArray()).MoveToOuterDisposeScope();
    }

    public Tensor Logits(Tensor modelInputs, int batchSize) => Training.Logits(model, modelInputs, device, batchSize);

    public IFeatureSpace Rows(long[] rows) => new FrameSpace(model, FeatureSpace.Take(inputs, rows), value, device);
}
