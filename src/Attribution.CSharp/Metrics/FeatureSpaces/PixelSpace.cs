using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// The pixels of images [B, C, H, W]: D = H * W slots, all real. A pixel is removed in all its channels at once and
/// scored by its attribution summed over channels (<see cref="FeatureRanking.PixelScores"/>), as RISE and
/// Sensitivity-N do. The substrate is computed from the inputs of the space, so a blur is per chunk
/// (<see cref="IFeatureSpace.Rows"/>).
/// </summary>
public sealed class PixelSpace : IFeatureSpace
{
    readonly nn.Module<Tensor, Tensor> model;
    readonly Tensor inputs;
    readonly Substrate substrate;
    readonly Device device;

    /// <param name="model">The classifier of images [N, C, H, W].</param>
    /// <param name="inputs">The block's images [B, C, H, W] (kept on the CPU).</param>
    /// <param name="substrate">What a removed pixel shows.</param>
    /// <param name="device">Where the model runs.</param>
    public PixelSpace(nn.Module<Tensor, Tensor> model, Tensor inputs, Substrate substrate, Device device)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(substrate);
        if (inputs.dim() != 4) throw new ArgumentException($"inputs must be [B, C, H, W]; got [{string.Join(", ", inputs.shape)}]", nameof(inputs));
        this.model = model;
        this.inputs = inputs.detach().cpu();
        this.substrate = substrate;
        this.device = device;
    }

    public long Count => inputs.shape[0];
    public long Slots => inputs.shape[2] * inputs.shape[3];
    public Tensor? Real => null;
    public string Substrate => substrate.Name;
    public Tensor Inputs => inputs;

    public Tensor Scores(Tensor maps)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (!maps.shape.SequenceEqual(inputs.shape))
            throw new ArgumentException($"maps [{string.Join(", ", maps.shape)}] must have the inputs' shape [{string.Join(", ", inputs.shape)}]", nameof(maps));
        return FeatureRanking.PixelScores(maps);
    }

    public Tensor Perturb(Tensor atSubstrate)
    {
        FeatureSpace.CheckMask(this, atSubstrate);
        using var scope = NewDisposeScope();
        long n = inputs.shape[0], c = inputs.shape[1], h = inputs.shape[2], w = inputs.shape[3], k = atSubstrate.shape[1];
        var changed = atSubstrate.cpu().reshape(atSubstrate.shape[0], k, 1, h, w);          // one mask for all channels
        var xs = inputs.unsqueeze(1).expand(n, k, c, h, w);
        var ss = substrate.Of(inputs).unsqueeze(1).expand(n, k, c, h, w);
        return where(changed, ss, xs).contiguous().view(n * k, c, h, w).MoveToOuterDisposeScope();
    }

    public Tensor Logits(Tensor modelInputs, int batchSize) => Training.Logits(model, modelInputs, device, batchSize);

    public IFeatureSpace Rows(long[] rows) => new PixelSpace(model, FeatureSpace.Take(inputs, rows), substrate, device);
}
