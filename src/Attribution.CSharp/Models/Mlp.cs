using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>
/// A multilayer perceptron for tabular inputs [B, F]: linear layers with ReLUs between them, logits out. Its ReLUs can be
/// swapped (<see cref="IRectifiedModel"/>), so the rule-based methods (DeepLIFT, Guided Backpropagation) explain it.
/// Layer names (hidden0, hidden1, ..., output) are stable: weights files use them.
/// </summary>
public sealed class Mlp : Module<Tensor, Tensor>, IRectifiedModel
{
    /// <summary>Sizes of the layers; part of the model's identity (and cache key).</summary>
    public sealed record Shape(int Features, int Classes, int Hidden = 64, int Layers = 2);

    readonly Linear[] hidden;
    readonly Linear output;

    public Shape Dimensions { get; }

    // The ReLU in use; rule-based methods swap it for one with another backward pass.
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

    public Mlp(Shape shape) : base(nameof(Mlp))
    {
        if (shape.Features < 1 || shape.Classes < 1 || shape.Hidden < 1 || shape.Layers < 0)
            throw new ArgumentOutOfRangeException(nameof(shape), shape, "Mlp: features, classes and hidden width must be positive, layers non-negative");
        Dimensions = shape;
        hidden = Enumerable.Range(0, shape.Layers)
                           .Select(i => Linear(i == 0 ? shape.Features : shape.Hidden, shape.Hidden))
                           .ToArray();
        output = Linear(shape.Layers == 0 ? shape.Features : shape.Hidden, shape.Classes);
        for (int i = 0; i < hidden.Length; i++) register_module($"hidden{i}", hidden[i]);
        register_module("output", output);
    }

    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 2 || input.shape[1] != Dimensions.Features)
            throw new ArgumentException($"Mlp: inputs [B, {Dimensions.Features}]; got [{string.Join(", ", input.shape)}]");
        using var scope = NewDisposeScope();
        var x = input;
        foreach (var layer in hidden) x = relu(layer.call(x));
        return output.call(x).MoveToOuterDisposeScope();
    }
}
