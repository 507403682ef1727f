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
}
