using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Higher derivatives of f_target by repeated reverse-mode passes (double and triple backward with
/// <c>create_graph</c>), shared by the Taylor decomposition and its fidelity analysis.
/// Every function takes points z [m, ...] that require grad and returns per-row results.
/// </summary>
static class TaylorDerivatives
{
    /// <summary>f at <paramref name="z"/> [m], with its graph (logit or softmax probability of the target).</summary>
    public static Tensor Value(nn.Module<Tensor, Tensor> model, Tensor z, Tensor targets, OutputFunction output)
    {
        var logits = model.forward(z);
        var picked = targets.unsqueeze(1);
        return output == OutputFunction.Logit
            ? logits.gather(1, picked).squeeze(1)
            : nn.functional.log_softmax(logits, 1).gather(1, picked).squeeze(1).exp();
    }

    /// <summary>
    /// d(sum of <paramref name="scalar"/>)/dz. A scalar that does not depend on z (a linear model's gradient,
    /// a ReLU network's Hessian) has derivative 0; the zero-weighted z keeps z in the graph so that autograd
    /// returns that 0 instead of refusing.
    /// </summary>
    public static Tensor Derivative(Tensor scalar, Tensor z, bool createGraph)
    {
        var anchored = scalar.sum() + (z * 0).sum();
        return autograd.grad([anchored], [z], retain_graph: true, create_graph: createGraph)[0];
    }

    /// <summary>Per-row dot product over all non-batch dimensions: [m, ...] x [m, ...] -> [m].</summary>
    public static Tensor RowDot(Tensor a, Tensor b) => (a * b).flatten(1).sum(1);
}
