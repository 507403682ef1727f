using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// A model whose ReLUs can be swapped for a rectifier with another backward rule. TorchSharp has no
/// backward hooks, so rule-based methods (Guided Backpropagation, Deconvnet) replace the ReLU itself by a
/// custom autograd function for the duration of one explanation.
/// </summary>
public interface IRectifiedModel
{
    /// <summary>Uses <paramref name="rectifier"/> in place of every ReLU until the returned scope is disposed.</summary>
    IDisposable UseRectifier(Func<Tensor, Tensor> rectifier);

    /// <summary>
    /// Uses <paramref name="pool"/> (input, kernel) in place of every 2-D max-pooling with kernel = stride until
    /// the returned scope is disposed; DeepLIFT swaps in its max-pool rule. The default swaps nothing: right for
    /// models without max-pooling, while a model with max-pooling that keeps it gets the gradient's rule there.
    /// </summary>
    IDisposable UseMaxPool(Func<Tensor, long, Tensor> pool) => NoSwap.Instance;
}

/// <summary>A scope that restores nothing.</summary>
sealed class NoSwap : IDisposable
{
    public static readonly NoSwap Instance = new();
    public void Dispose() { }
}
