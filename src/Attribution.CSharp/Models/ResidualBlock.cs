using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>A 3x3 convolution without bias (<c>stride</c>, padding 1, or 1x1 without padding) followed by batch normalisation.</summary>
public sealed class ConvBatchNorm : Module<Tensor, Tensor>
{
    readonly Conv2d conv;
    readonly BatchNorm2d bn;

    public ConvBatchNorm(long inChannels, long outChannels, long kernel, long stride) : base(nameof(ConvBatchNorm))
    {
        conv = Conv2d(inChannels, outChannels, kernel, stride: stride, padding: kernel / 2, bias: false);
        bn = BatchNorm2d(outChannels);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        return bn.forward(conv.forward(input)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Puts the layer back in the state of a freshly built one: the convolution's weights from PyTorch's default
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) drawn with <paramref name="generator"/>, batch normalisation's scale 1, shift 0,
    /// running mean 0, running variance 1 and batch count 0 (statistics of the old weights would not fit the new ones).
    /// </summary>
    public void Reinitialise(Generator generator)
    {
        using var noGrad = no_grad();
        var w = conv.weight!;
        double bound = 1.0 / Math.Sqrt(w.shape.Skip(1).Aggregate(1L, (a, b) => a * b));
        using (var fresh = rand(w.shape, w.dtype, w.device, generator: generator) * (2 * bound) - bound) w.copy_(fresh);
        bn.weight!.fill_(1.0);
        bn.bias!.fill_(0.0);
        bn.running_mean!.zero_();
        bn.running_var!.fill_(1.0);
        bn.num_batches_tracked?.zero_();
    }
}

/// <summary>
/// The basic residual block of He et al. (2016): relu(BN(conv3x3(relu(BN(conv3x3(x))))) + shortcut(x)), where the
/// shortcut is the identity, or a 1x1 convolution with BN (He et al.'s option B) when the stride or width changes.
/// The rectifier is passed in, so a model can swap every ReLU (<see cref="IRectifiedModel"/>); the residual sum is an
/// ordinary addition, linear, so DeepLIFT's multipliers pass through it unchanged.
/// </summary>
public sealed class ResidualBlock : Module<Tensor, Tensor>
{
    readonly ConvBatchNorm first;
    readonly ConvBatchNorm second;
    readonly ConvBatchNorm? shortcut;

    public ResidualBlock(long inChannels, long outChannels, long stride) : base(nameof(ResidualBlock))
    {
        first = new ConvBatchNorm(inChannels, outChannels, 3, stride);
        second = new ConvBatchNorm(outChannels, outChannels, 3, 1);
        if (stride != 1 || inChannels != outChannels) shortcut = new ConvBatchNorm(inChannels, outChannels, 1, stride);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => Forward(input, x => functional.relu(x));

    /// <summary>The block with <paramref name="relu"/> in place of both of its ReLUs.</summary>
    public Tensor Forward(Tensor input, Func<Tensor, Tensor> relu)
    {
        using var scope = NewDisposeScope();
        var residual = second.forward(relu(first.forward(input)));
        var skip = shortcut is null ? input : shortcut.forward(input);
        return relu(residual + skip).MoveToOuterDisposeScope();
    }

    /// <summary>Re-draws every layer of the block (see <see cref="ConvBatchNorm.Reinitialise"/>).</summary>
    public void Reinitialise(Generator generator)
    {
        first.Reinitialise(generator);
        second.Reinitialise(generator);
        shortcut?.Reinitialise(generator);
    }
}
