using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>
/// The vision model of Gat et al. (2022, Sec. 5.1) adapted to 28x28x1 inputs: two blocks of
/// convolution + max-pooling, then three fully connected layers, ReLU throughout (the layout of the
/// PyTorch CIFAR-10 tutorial network the paper describes). Outputs logits.
/// Layer names (conv1, conv2, fc1, fc2, fc3) are stable: weights files and layer-based methods use them.
/// </summary>
public sealed class FashionCnn : Module<Tensor, Tensor>, ILayeredModel, IRectifiedModel
{
    /// <summary>Sizes of the layers; part of the model's identity (and cache key).</summary>
    public sealed record Shape(int InputChannels = 1, int ImageSize = 28, int Conv1 = 16, int Conv2 = 32, int Kernel = 5,
                               int Hidden1 = 120, int Hidden2 = 84, int Classes = 10)
    {
        /// <summary>Side of the feature map after both conv + pool blocks.</summary>
        public int FeatureSide => ((ImageSize - Kernel + 1) / 2 - Kernel + 1) / 2;
    }

    readonly Conv2d conv1;
    readonly Conv2d conv2;
    readonly Linear fc1;
    readonly Linear fc2;
    readonly Linear fc3;

    public Shape Dimensions { get; }

    // The ReLU in use; rule-based methods swap it for one with another backward pass (IRectifiedModel).
    Func<Tensor, Tensor> relu = x => functional.relu(x);

    public IDisposable UseRectifier(Func<Tensor, Tensor> rectifier)
    {
        var previous = relu;
        relu = rectifier;
        return new Restore(() => relu = previous);
    }

    // The max-pooling in use (input, kernel); DeepLIFT swaps it for its own backward rule (IRectifiedModel).
    Func<Tensor, long, Tensor> maxPool = (x, k) => functional.max_pool2d(x, k);

    public IDisposable UseMaxPool(Func<Tensor, long, Tensor> pool)
    {
        var previous = maxPool;
        maxPool = pool;
        return new Restore(() => maxPool = previous);
    }

    sealed class Restore(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    public FashionCnn(Shape? shape = null) : base(nameof(FashionCnn))
    {
        Dimensions = shape ?? new Shape();
        var s = Dimensions;
        if (s.FeatureSide < 1) throw new ArgumentException($"image size {s.ImageSize} is too small for two {s.Kernel}x{s.Kernel} conv + pool blocks");
        conv1 = Conv2d(s.InputChannels, s.Conv1, s.Kernel);
        conv2 = Conv2d(s.Conv1, s.Conv2, s.Kernel);
        fc1 = Linear(s.Conv2 * s.FeatureSide * s.FeatureSide, s.Hidden1);
        fc2 = Linear(s.Hidden1, s.Hidden2);
        fc3 = Linear(s.Hidden2, s.Classes);
        RegisterComponents();
    }

    static readonly string[] StageNames = ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3"];
    static readonly string[] ParameterStageNames = ["conv1", "conv2", "fc1", "fc2", "fc3"];

    public IReadOnlyList<string> Stages => StageNames;
    public IReadOnlyList<string> ParameterStages => ParameterStageNames;

    public override Tensor forward(Tensor input) => Run(input, 0, StageNames.Length);

    public Tensor ForwardTo(string stage, Tensor input) => Run(input, 0, IndexOf(stage) + 1);

    public Tensor ForwardFrom(string stage, Tensor activation) => Run(activation, IndexOf(stage) + 1, StageNames.Length);

    public Tensor ForwardStage(string stage, Tensor activation) => Run(activation, IndexOf(stage), IndexOf(stage) + 1);

    public void Reinitialise(string stage, Generator generator)
    {
        using var noGrad = no_grad();
        Module layer = stage switch
        {
            "conv1" => conv1, "conv2" => conv2, "fc1" => fc1, "fc2" => fc2, "fc3" => fc3,
            _ => throw new ArgumentException($"stage '{stage}' has no parameters; these do: {string.Join(", ", ParameterStageNames)}"),
        };
        // PyTorch's default for Conv2d and Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
        var weight = layer.named_parameters().First().parameter;
        double bound = 1.0 / Math.Sqrt(weight.shape.Skip(1).Aggregate(1L, (a, b) => a * b));
        foreach (var (_, p) in layer.named_parameters())
        {
            using var fresh = rand(p.shape, p.dtype, p.device, generator: generator) * (2 * bound) - bound;
            p.copy_(fresh);
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
                "conv1" => relu(conv1.forward(h)),
                "pool1" => maxPool(h, 2),
                "conv2" => relu(conv2.forward(h)),
                "pool2" => maxPool(h, 2),
                "fc1" => relu(fc1.forward(h.flatten(1))),
                "fc2" => relu(fc2.forward(h)),
                _ => fc3.forward(h),
            };
        }
        return (from == to ? h.alias() : h).MoveToOuterDisposeScope();
    }

    static int IndexOf(string stage)
    {
        int i = Array.IndexOf(StageNames, stage);
        if (i < 0) throw new ArgumentException($"unknown stage '{stage}'; stages: {string.Join(", ", StageNames)}");
        return i;
    }
}
