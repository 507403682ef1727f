using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// One attribution method. Every method has the same call: the model (returning logits), a batch of
/// inputs [B, ...], the explained class of each input [B] (int64), and how to run. Methods never do I/O.
/// </summary>
public interface IAttributionMethod
{
    /// <summary>A short human-readable description with the parameters, for reports.</summary>
    string Describe();

    /// <summary>Attributes f_target(inputs) to the input features.</summary>
    Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options);
}
