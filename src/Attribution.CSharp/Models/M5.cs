using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>
/// M5 (Dai et al. 2017, "Very deep convolutional neural networks for raw waveforms"), the speech-command model of
/// Gat et al. (2022, Sec. 5.1), in the layout of the PyTorch speech-command tutorial: a wide strided convolution
/// (kernel 80, stride 16, 32 channels) then three convolutions of kernel 3 (32, 64, 64 channels), each followed by
/// BatchNorm, ReLU and max-pooling by 4; a global average over time; one linear layer to the class logits.
/// <para>Input: waveforms [B, 1, T] or [B, 1, 1, T]; the global average makes any T at least
/// <see cref="Shape.MinimumLength"/> work (1 s and 2 s alike). Activations are [B, C, 1, t], so layer-based methods
/// (Grad-CAM, IBA) see 2-D feature maps of height 1.</para>
/// <para>Each convolution is a Linear over the unfolded windows (weights [out, in * kernel], the row-major flattening
/// of PyTorch's Conv1d weight [out, in, kernel]): TorchSharp's CPU convolution gave intermittent NaN input gradients
/// under load in this project (see <see cref="TextCnn"/>), and input gradients are what the model is explained by.</para>
/// Stages: conv1, pool1, conv2, pool2, conv3, pool3, conv4, pool4, gap, fc (conv k = convolution, BatchNorm, ReLU).
/// </summary>
public sealed class M5 : Module<Tensor, Tensor>, ILayeredModel, IRectifiedModel
{
    /// <summary>Sizes of the layers; part of the model's identity (and cache key). The tutorial's defaults.</summary>
    public sealed record Shape(int Classes = 35, int Channels = 32, int FirstKernel = 80, int FirstStride = 16, int Kernel = 3, int Pool = 4)
    {
        /// <summary>The shortest input for which every stage has at least one output step.</summary>
        public long MinimumLength
        {
            get
            {
                long t = 1;                                   // after pool4
                for (int i = 0; i < 3; i++) t = t * Pool + Kernel - 1;   // undo pool k+1 and conv k+1
                return (t * Pool - 1) * FirstStride + FirstKernel;       // undo pool1 and conv1
            }
        }
    }

    readonly Linear conv1, conv2, conv3, conv4;
    readonly BatchNorm2d bn1, bn2, bn3, bn4;
    readonly Linear fc;

    public Shape Dimensions { get; }

    Func<Tensor, Tensor> relu = x => functional.relu(x);
    // Null: plain max-pooling over windows of 1 x Pool. Set: a swapped 2-D pool with kernel = stride (DeepLIFT's rule), see Pool().
    Func<Tensor, long, Tensor>? swappedPool;

    public IDisposable UseRectifier(Func<Tensor, Tensor> rectifier)
    {
        var previous = relu;
        relu = rectifier;
        return new Restore(() => relu = previous);
    }

    public IDisposable UseMaxPool(Func<Tensor, long, Tensor> pool)
    {
        var previous = swappedPool;
        swappedPool = pool;
        return new Restore(() => swappedPool = previous);
    }

    sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    public M5(Shape? shape = null) : base(nameof(M5))
    {
        Dimensions = shape ?? new Shape();
        var s = Dimensions;
        if (s.Classes < 2 || s.Channels < 1 || s.FirstKernel < 1 || s.FirstStride < 1 || s.Kernel < 1 || s.Pool < 1)
            throw new ArgumentException($"M5: sizes must be positive (two classes at least); got {s}", nameof(shape));
        conv1 = Linear(s.FirstKernel, s.Channels);
        bn1 = BatchNorm2d(s.Channels);
        conv2 = Linear(s.Channels * s.Kernel, s.Channels);
        bn2 = BatchNorm2d(s.Channels);
        conv3 = Linear(s.Channels * s.Kernel, 2 * s.Channels);
        bn3 = BatchNorm2d(2 * s.Channels);
        conv4 = Linear(2 * s.Channels * s.Kernel, 2 * s.Channels);
        bn4 = BatchNorm2d(2 * s.Channels);
        fc = Linear(2 * s.Channels, s.Classes);
        RegisterComponents();
    }

    static readonly string[] StageNames = ["conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "conv4", "pool4", "gap", "fc"];
    static readonly string[] ParameterStageNames = ["conv1", "conv2", "conv3", "conv4", "fc"];

    public IReadOnlyList<string> Stages => StageNames;
    public IReadOnlyList<string> ParameterStages => ParameterStageNames;

    /// <summary>Logits [B, classes] of waveforms [B, 1, T] or [B, 1, 1, T].</summary>
    public override Tensor forward(Tensor input) => Run(AsFeatureMap(input), 0, StageNames.Length);

    public Tensor ForwardTo(string stage, Tensor input) => Run(AsFeatureMap(input), 0, IndexOf(stage) + 1);

    public Tensor ForwardFrom(string stage, Tensor activation) => Run(activation, IndexOf(stage) + 1, StageNames.Length);

    /// <summary>
    /// Re-draws the stage's weights and biases from PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and puts its
    /// BatchNorm back to its initial state (scale 1, shift 0, running mean 0, running variance 1).
    /// </summary>
    public void Reinitialise(string stage, Generator generator)
    {
        using var noGrad = no_grad();
        var (layer, norm) = stage switch
        {
            "conv1" => (conv1, bn1), "conv2" => (conv2, bn2), "conv3" => (conv3, bn3), "conv4" => (conv4, bn4), "fc" => (fc, (BatchNorm2d?)null),
            _ => throw new ArgumentException($"stage '{stage}' has no parameters; these do: {string.Join(", ", ParameterStageNames)}"),
        };
        double bound = 1.0 / Math.Sqrt(layer.weight.shape[1]);
        foreach (var (_, p) in layer.named_parameters())
        {
            using var fresh = rand(p.shape, p.dtype, p.device, generator: generator) * (2 * bound) - bound;
            p.copy_(fresh);
        }
        if (norm is not null)
        {
            norm.weight!.fill_(1);
            norm.bias!.fill_(0);
            norm.running_mean!.zero_();
            norm.running_var!.fill_(1);
        }
    }

    Tensor AsFeatureMap(Tensor input)
    {
        bool ok = (input.dim() == 3 && input.shape[1] == 1) || (input.dim() == 4 && input.shape[1] == 1 && input.shape[2] == 1);
        if (!ok || input.shape[^1] < Dimensions.MinimumLength)
            throw new ArgumentException($"M5 takes waveforms [B, 1, T] or [B, 1, 1, T] with T >= {Dimensions.MinimumLength}; got [{string.Join(", ", input.shape)}]");
        return input.dim() == 3 ? input.unsqueeze(2) : input.alias();
    }

    /// <summary>Applies stages [from, to) to <paramref name="h"/> ([B, C, 1, t] between stages).</summary>
    Tensor Run(Tensor h, int from, int to)
    {
        using var scope = NewDisposeScope();
        var s = Dimensions;
        for (int i = from; i < to; i++)
        {
            h = StageNames[i] switch
            {
                "conv1" => relu(bn1.forward(Convolve(conv1, h, s.FirstKernel, s.FirstStride))),
                "conv2" => relu(bn2.forward(Convolve(conv2, h, s.Kernel, 1))),
                "conv3" => relu(bn3.forward(Convolve(conv3, h, s.Kernel, 1))),
                "conv4" => relu(bn4.forward(Convolve(conv4, h, s.Kernel, 1))),
                "gap" => h.mean([2L, 3L]),
                "fc" => fc.forward(h),
                _ => Pool(h),
            };
        }
        return (from == to ? h.alias() : h).MoveToOuterDisposeScope();
    }

    /// <summary>A 1-D convolution of [B, C, 1, T] as a Linear over the windows: [B, out, 1, (T - kernel) / stride + 1].</summary>
    static Tensor Convolve(Linear layer, Tensor h, long kernel, long stride)
    {
        long b = h.shape[0], c = h.shape[1];
        var windows = h.squeeze(2).unfold(2, kernel, stride);                                  // [B, C, L, k]
        var flat = windows.permute(0, 2, 1, 3).reshape(b, windows.shape[2], c * kernel);       // [B, L, C k]
        return layer.forward(flat).permute(0, 2, 1).unsqueeze(2);
    }

    /// <summary>
    /// Max-pooling over windows of 1 x Pool. A swapped-in pool (DeepLIFT's) is 2-D with a square kernel = stride,
    /// so it gets the map repeated Pool times along the height: a Pool x Pool window of the repeated map holds the
    /// same values as the 1 x Pool window, and the repeat's backward sums the copies, so forward value and
    /// routed gradient are those of the 1 x Pool pool.
    /// </summary>
    Tensor Pool(Tensor h)
    {
        long k = Dimensions.Pool;
        return swappedPool is null
            ? functional.max_pool2d(h, [1, k], [1, k])
            : swappedPool(h.expand(h.shape[0], h.shape[1], k, h.shape[3]), k);
    }

    static int IndexOf(string stage)
    {
        int i = Array.IndexOf(StageNames, stage);
        if (i < 0) throw new ArgumentException($"unknown stage '{stage}'; stages: {string.Join(", ", StageNames)}");
        return i;
    }
}
