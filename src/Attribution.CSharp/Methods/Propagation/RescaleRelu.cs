using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Attribution.Methods;

/// <summary>
/// relu(x) forward on a paired batch [inputs; references] (the first half's row i is paired with the second
/// half's row i); backward applies DeepLIFT's Rescale rule (Shrikumar et al. 2017, Sec. 3.3): the multiplier
/// (relu(x) - relu(x0)) / (x - x0), or the gradient [x > 0] where |x - x0| &lt; <see cref="Epsilon"/>
/// (Captum's eps). Both halves get the pair's multiplier, as in Captum's DeepLift.
/// </summary>
public sealed class RescaleRelu : SingleTensorFunction<RescaleRelu>
{
    /// <summary>Below this |x - x0| the multiplier falls back to the gradient (Captum's default eps).</summary>
    public const double Epsilon = 1e-7;

    public override string Name => "RescaleRelu";

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        if (x.shape[0] % 2 != 0)
            throw new InvalidOperationException($"the Rescale ReLU needs a paired batch [inputs; references], got {x.shape[0]} rows");
        ctx.save_for_backward([x]);
        return x.relu();
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        var x = ctx.get_saved_variables()[0];
        long n = x.shape[0] / 2;
        var input = x.narrow(0, 0, n);
        var reference = x.narrow(0, n, n);
        var deltaIn = input - reference;
        var deltaOut = input.relu() - reference.relu();
        var small = deltaIn.abs().lt(Epsilon);
        var gradient = input.gt(0).to(x.dtype);
        var rescale = deltaOut / deltaIn.masked_fill(small, 1.0);
        var multiplier = where(small, gradient, rescale);
        return [gradOutput * cat([multiplier, multiplier], 0)];
    }
}

/// <summary>
/// The Rescale rectifier for <see cref="Models.IRectifiedModel.UseRectifier"/>, checking that every batch it
/// sees is the paired batch of <c>pairs()</c> inputs and their references (2 x pairs rows).
/// </summary>
public static class RescaleRectifier
{
    public static Func<Tensor, Tensor> Create(Func<long> pairs) => x =>
    {
        long expected = 2 * pairs();
        if (x.shape[0] != expected)
            throw new InvalidOperationException($"the Rescale ReLU expected the paired batch of {expected} rows [inputs; references], got {x.shape[0]}");
        return RescaleRelu.apply(x);
    };
}
