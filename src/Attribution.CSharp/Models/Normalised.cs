using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// A model that takes inputs in the user's pixel space and normalises them itself, (x - mean) / std per channel (e.g.
/// ImageNet's mean and std): explained through this, attributions are in pixel space, and masking metrics write their
/// values (black = 0) in that space. The mean and std are constants, not parameters.
/// </summary>
public sealed class Normalised : nn.Module<Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor> inner;
    readonly double[] mean;
    readonly double[] std;

    /// <param name="inner">The model as trained, on normalised inputs [B, C, ...].</param>
    /// <param name="mean">One value per channel.</param>
    /// <param name="std">One positive value per channel.</param>
    public Normalised(nn.Module<Tensor, Tensor> inner, double[] mean, double[] std) : base(nameof(Normalised))
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (mean.Length == 0 || mean.Length != std.Length) throw new ArgumentException($"mean and std need one value per channel each; got {mean.Length} and {std.Length}");
        if (std.Any(s => !(s > 0) || !double.IsFinite(s))) throw new ArgumentException("every std must be positive and finite", nameof(std));
        this.inner = inner;
        this.mean = mean;
        this.std = std;
        RegisterComponents();
    }

    /// <summary>The model on normalised inputs.</summary>
    public nn.Module<Tensor, Tensor> Inner => inner;

    public override Tensor forward(Tensor input)
    {
        if (input.dim() < 2 || input.shape[1] != mean.Length)
            throw new ArgumentException($"Normalised: inputs [B, C, ...] with C = {mean.Length} channels; got [{string.Join(", ", input.shape)}]");
        using var scope = NewDisposeScope();
        var shape = new long[input.dim()];
        Array.Fill(shape, 1L);
        shape[1] = mean.Length;
        var m = tensor(mean, dtype: input.dtype, device: input.device).view(shape);
        var s = tensor(std, dtype: input.dtype, device: input.device).view(shape);
        return inner.forward((input - m) / s).MoveToOuterDisposeScope();
    }
}
