using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Attribution.Methods;

/// <summary>Backward rules for a ReLU whose forward pass is unchanged.</summary>
public enum ReluRule
{
    /// <summary>Guided Backpropagation (Springenberg et al. 2015): pass the gradient where the input was positive and the gradient is positive.</summary>
    Guided,
    /// <summary>Deconvnet (Zeiler and Fergus 2014): pass the positive part of the gradient, whatever the input.</summary>
    Deconvnet,
}

/// <summary>relu(x) forward; backward passes the gradient only where both x and the gradient are positive.</summary>
public sealed class GuidedRelu : SingleTensorFunction<GuidedRelu>
{
    public override string Name => "GuidedRelu";

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        ctx.save_for_backward([x]);
        return x.relu();
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput) =>
        [gradOutput.clamp_min(0) * ctx.get_saved_variables()[0].gt(0).to(gradOutput.dtype)];
}

/// <summary>relu(x) forward; backward passes the positive part of the gradient, ignoring x.</summary>
public sealed class DeconvnetRelu : SingleTensorFunction<DeconvnetRelu>
{
    public override string Name => "DeconvnetRelu";

    public override Tensor forward(AutogradContext ctx, params object[] vars) => ((Tensor)vars[0]).relu();

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput) => [gradOutput.clamp_min(0)];
}

/// <summary>The rectifier of each rule, to hand to <see cref="Models.IRectifiedModel.UseRectifier"/>.</summary>
public static class ModifiedRelu
{
    public static Func<Tensor, Tensor> Rectifier(ReluRule rule) =>
        rule == ReluRule.Guided ? x => GuidedRelu.apply(x) : x => DeconvnetRelu.apply(x);
}
