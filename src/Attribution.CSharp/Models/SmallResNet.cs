using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>
/// A CIFAR-style residual network (He et al. 2016, Sec. 4.2) for small grey or colour images, e.g. Fashion-MNIST at
/// 28x28 or the 56x56 canvases: a 3x3 convolution stem with BN and ReLU, three stages of basic blocks
/// (<see cref="ResidualBlock"/>) with 16, 32 and 64 channels (the second and third start with stride 2), global
/// average pooling and one linear layer. With one block per stage it has 8 weight layers (ResNet-8), with three
/// ResNet-20. Outputs logits.
/// <para>Stages (stable names): stem, stage1, stage2, stage3, pool, fc. For 28x28 inputs the feature maps after the
/// stages are 28x28, 14x14 and 7x7; for 56x56 inputs 56, 28 and 14. Grad-CAM and IBA cut it at stage3 by default.</para>
/// <para>Call <c>eval()</c> before attributing: batch normalisation then uses its running statistics, an affine map,
/// so batched and unbatched maps agree and DeepLIFT's summation-to-delta holds.</para>
/// </summary>
public sealed class SmallResNet : Module<Tensor, Tensor>, ILayeredModel, IRectifiedModel
{
    /// <summary>Sizes of the network; part of the model's identity (and cache key).</summary>
    public sealed record Shape(int InputChannels = 1, int ImageSize = 28, int Classes = 10, int BlocksPerStage = 1,
                               int Width1 = 16, int Width2 = 32, int Width3 = 64)
    {
        /// <summary>Side of the feature map after stage3: the image side halved twice (rounding up, as a stride-2 3x3 convolution with padding 1 does).</summary>
        public int FeatureSide => ((ImageSize + 1) / 2 + 1) / 2;
    }

    /// <summary>The last convolutional stage, where Grad-CAM and IBA cut the network by default.</summary>
    public const string LastConvolutionalStage = "stage3";

    readonly ConvBatchNorm stem;
    readonly ModuleList<ResidualBlock> stage1;
    readonly ModuleList<ResidualBlock> stage2;
    readonly ModuleList<ResidualBlock> stage3;
    readonly Linear fc;

    public Shape Dimensions { get; }

    // The ReLU in use; rule-based methods swap it for one with another backward pass (IRectifiedModel).
    Func<Tensor, Tensor> relu = x => functional.relu(x);

    public IDisposable UseRectifier(Func<Tensor, Tensor> rectifier)
    {
        var previous = relu;
        relu = rectifier;
        return new Restore(() => relu = previous);
    }

    sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    public SmallResNet(Shape? shape = null) : base(nameof(SmallResNet))
    {
        Dimensions = shape ?? new Shape();
        var s = Dimensions;
        if (s.InputChannels < 1 || s.Classes < 1 || s.BlocksPerStage < 1 || s.Width1 < 1 || s.Width2 < 1 || s.Width3 < 1)
            throw new ArgumentException($"every size of the network must be at least 1: {s}");
        if (s.ImageSize < 4) throw new ArgumentException($"image size {s.ImageSize} is too small for two stride-2 stages");
        stem = new ConvBatchNorm(s.InputChannels, s.Width1, 3, 1);
        stage1 = Stage(s.Width1, s.Width1, 1, s.BlocksPerStage);
        stage2 = Stage(s.Width1, s.Width2, 2, s.BlocksPerStage);
        stage3 = Stage(s.Width2, s.Width3, 2, s.BlocksPerStage);
        fc = Linear(s.Width3, s.Classes);
        RegisterComponents();
    }

    static ModuleList<ResidualBlock> Stage(long inChannels, long outChannels, long stride, int blocks) =>
        new(Enumerable.Range(0, blocks).Select(i => new ResidualBlock(i == 0 ? inChannels : outChannels, outChannels, i == 0 ? stride : 1)).ToArray());

    static readonly string[] StageNames = ["stem", "stage1", "stage2", "stage3", "pool", "fc"];
    static readonly string[] ParameterStageNames = ["stem", "stage1", "stage2", "stage3", "fc"];

    public IReadOnlyList<string> Stages => StageNames;
    public IReadOnlyList<string> ParameterStages => ParameterStageNames;

    public override Tensor forward(Tensor input) => Run(input, 0, StageNames.Length);

    public Tensor ForwardTo(string stage, Tensor input) => Run(input, 0, IndexOf(stage) + 1);

    public Tensor ForwardFrom(string stage, Tensor activation) => Run(activation, IndexOf(stage) + 1, StageNames.Length);

    /// <summary>
    /// Re-draws a stage as freshly built: convolution and linear weights (and the linear bias) from PyTorch's default
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with <paramref name="generator"/>; batch normalisation back to scale 1, shift 0
    /// and running statistics (0, 1).
    /// </summary>
    public void Reinitialise(string stage, Generator generator)
    {
        using var noGrad = no_grad();
        switch (stage)
        {
            case "stem": stem.Reinitialise(generator); break;
            case "stage1": foreach (var b in stage1) b.Reinitialise(generator); break;
            case "stage2": foreach (var b in stage2) b.Reinitialise(generator); break;
            case "stage3": foreach (var b in stage3) b.Reinitialise(generator); break;
            case "fc":
                double bound = 1.0 / Math.Sqrt(fc.weight!.shape[1]);
                foreach (var (_, p) in fc.named_parameters())
                {
                    using var fresh = rand(p.shape, p.dtype, p.device, generator: generator) * (2 * bound) - bound;
                    p.copy_(fresh);
                }
                break;
            default:
                throw new ArgumentException($"stage '{stage}' has no parameters; these do: {string.Join(", ", ParameterStageNames)}");
        }
    }

    /// <summary>Applies stages [from, to) to <paramref name="h"/>.</summary>
    Tensor Run(Tensor h, int from, int to)
    {
        using var scope = NewDisposeScope();
        for (int i = from; i < to; i++)
        {
            h = StageNames[i] switch
            {
                "stem" => relu(stem.forward(h)),
                "stage1" => Blocks(stage1, h),
                "stage2" => Blocks(stage2, h),
                "stage3" => Blocks(stage3, h),
                "pool" => h.mean([2L, 3L]),
                _ => fc.forward(h),
            };
        }
        return (from == to ? h.alias() : h).MoveToOuterDisposeScope();
    }

    Tensor Blocks(ModuleList<ResidualBlock> blocks, Tensor h)
    {
        foreach (var block in blocks) h = block.Forward(h, relu);
        return h;
    }

    static int IndexOf(string stage)
    {
        int i = Array.IndexOf(StageNames, stage);
        if (i < 0) throw new ArgumentException($"unknown stage '{stage}'; stages: {string.Join(", ", StageNames)}");
        return i;
    }
}
