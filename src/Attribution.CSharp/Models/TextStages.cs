using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// What the text models' <see cref="ILayeredModel"/> implementations share: stage lookup, running a range of stages,
/// and re-drawing parameters from PyTorch's default initialisation (the parameter-randomisation sanity check).
/// </summary>
internal static class TextStages
{
    /// <summary>The index of <paramref name="stage"/> in <paramref name="stages"/>, or an error naming them all.</summary>
    public static int IndexOf(IReadOnlyList<string> stages, string stage, string model)
    {
        for (int i = 0; i < stages.Count; i++) if (stages[i] == stage) return i;
        throw new ArgumentException($"{model}: unknown stage '{stage}'; stages: {string.Join(", ", stages)}");
    }

    /// <summary>Applies stages [from, to) with <paramref name="apply"/>(index, activation); an empty range gives an alias.</summary>
    public static Tensor Run(Tensor h, int from, int to, Func<int, Tensor, Tensor> apply)
    {
        using var scope = NewDisposeScope();
        for (int i = from; i < to; i++) h = apply(i, h);
        return (from == to ? h.alias() : h).MoveToOuterDisposeScope();
    }

    /// <summary>Every parameter of <paramref name="module"/> redrawn from U(-bound, bound) (PyTorch's LSTM default, bound 1/sqrt(hidden)).</summary>
    public static void Uniform(nn.Module module, double bound, Generator generator)
    {
        using var noGrad = no_grad();
        foreach (var (_, p) in module.named_parameters())
        {
            using var fresh = rand(p.shape, p.dtype, p.device, generator: generator) * (2 * bound) - bound;
            p.copy_(fresh);
        }
    }

    /// <summary>PyTorch's default for Linear: weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).</summary>
    public static void Linear(Linear layer, Generator generator) => Uniform(layer, 1.0 / Math.Sqrt(layer.weight.shape[1]), generator);

    /// <summary>Linear layers as <see cref="Linear(TorchSharp.Modules.Linear, Generator)"/>, layer norms back to weight 1 and bias 0, in every submodule.</summary>
    public static void Defaults(nn.Module module, Generator generator)
    {
        using var noGrad = no_grad();
        foreach (var (_, m) in module.named_modules().Prepend(("", module)))
        {
            if (m is Linear linear) Linear(linear, generator);
            else if (m is LayerNorm norm)
            {
                norm.weight?.fill_(1.0);
                norm.bias?.zero_();
            }
        }
    }
}
