using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// DeepLIFT with the Rescale rule (Shrikumar et al. 2017, Sec. 3.5.1), as Captum's DeepLift: attribution
/// (x - b) (.) m, where m chains the layers' multipliers from the target logit back to the input. Linear layers
/// (fully connected, convolution) keep their weights; each ReLU y = g(x) with reference x0 (its input at the
/// baseline) uses (g(x) - g(x0)) / (x - x0), or g'(x) where |x - x0| &lt; 1e-7. Summation-to-delta holds:
/// sum of the map = f(x) - f(b) for the logit, to rounding, for networks of linear layers, ReLUs and swapped max-pools.
/// <para>Max-pooling (2-D, kernel = stride) uses Captum's rule (<see cref="RescaleMaxPool2d"/>), which keeps
/// summation-to-delta, when the model swaps its pools (<see cref="Models.IRectifiedModel.UseMaxPool"/>; FashionCnn
/// does); a model that does not gets the gradient there (the input's max location as a linear selection), and the
/// sum is then only approximate. The <c>convergence_delta</c> diagnostic measures it.</para>
/// <para>Implementation: inputs and baselines run through the model as one batch [x; b] with the ReLUs swapped
/// for <see cref="RescaleRelu"/> (Captum's concatenation trick); needs <see cref="Models.IRectifiedModel"/>.
/// The baseline is a constant (Captum's default: zero). Attributes the logit only.</para>
/// </summary>
public sealed class DeepLift : IAttributionMethod
{
    /// <param name="baseline">The value of every feature of the baseline input b (Captum's default: 0).</param>
    public DeepLift(double baseline = 0.0) { Baseline = baseline; }

    public double Baseline { get; }

    public string Describe() => $"deep_lift: rescale rule, baseline {Baseline}";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        using var scope = NewDisposeScope();
        var shape = inputs.shape.ToArray();
        shape[0] = 1;
        var reference = full(shape, Baseline, inputs.dtype, inputs.device);
        var explanation = DeepLiftShap.Attribute("deep_lift", model, inputs, targets, reference, options);
        explanation.Maps.MoveToOuterDisposeScope();
        foreach (var d in explanation.Diagnostics.Values) d.MoveToOuterDisposeScope();
        return explanation;
    }
}
