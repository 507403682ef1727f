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
public sealed class FashionCnn : Module<Tensor, Tensor>
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

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var h = functional.max_pool2d(functional.relu(conv1.forward(input)), 2);
        h = functional.max_pool2d(functional.relu(conv2.forward(h)), 2);
        h = h.flatten(1);
        h = functional.relu(fc1.forward(h));
        h = functional.relu(fc2.forward(h));
        return fc3.forward(h).MoveToOuterDisposeScope();
    }
}
