using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Attribution.Methods;

/// <summary>
/// 2-D max-pooling (kernel = stride = k) forward on a paired batch [inputs; references]; backward applies
/// Captum's DeepLift max-pool rule: with y = pool(x), y0 = pool(x0) and m = max(y, y0), the pooled delta
/// y - y0 is split as (m - y0), routed to the input's max location, plus (y - m), routed to the reference's
/// max location, and divided by x - x0 there (the gradient where |x - x0| &lt; <see cref="RescaleRelu.Epsilon"/>).
/// The contributions of each window then sum to y - y0, which keeps summation-to-delta.
/// </summary>
public sealed class RescaleMaxPool2d : SingleTensorFunction<RescaleMaxPool2d>
{
    public override string Name => "RescaleMaxPool2d";

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        long kernel = (long)vars[1];
        if (x.shape[0] % 2 != 0)
            throw new InvalidOperationException($"the Rescale max-pool needs a paired batch [inputs; references], got {x.shape[0]} rows");
        ctx.save_for_backward([x]);
        ctx.save_data("kernel", kernel);
        return nn.functional.max_pool2d(x, kernel);
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        var x = ctx.get_saved_variables()[0];
        long kernel = (long)ctx.get_data("kernel");
        long n = x.shape[0] / 2;
        var (pooled, indices) = nn.functional.max_pool2d_with_indices(x, [kernel, kernel]);
        var y = pooled.narrow(0, 0, n);
        var y0 = pooled.narrow(0, n, n);
        var top = maximum(y, y0);
        var g = gradOutput.narrow(0, 0, n);
        var input = x.narrow(0, 0, n);
        var deltaIn = input - x.narrow(0, n, n);
        var routed = Unpool(g * (top - y0), indices.narrow(0, 0, n), input) + Unpool(g * (y - top), indices.narrow(0, n, n), input);
        var small = deltaIn.abs().lt(RescaleRelu.Epsilon);
        var multiplied = where(small, Unpool(g, indices.narrow(0, 0, n), input), routed / deltaIn.masked_fill(small, 1.0));
        // One entry per argument of apply; the kernel size has no gradient.
        return [cat([multiplied, zeros_like(multiplied)], 0), null!];
    }

    /// <summary>Scatters pooled values [n, c, h', w'] back to their flat max locations in a map shaped like <paramref name="like"/>.</summary>
    static Tensor Unpool(Tensor values, Tensor indices, Tensor like)
    {
        var flat = zeros(like.shape[0], like.shape[1], like.shape[2] * like.shape[3], like.dtype, like.device);
        return flat.scatter_add_(2, indices.flatten(2), values.flatten(2)).view(like.shape);
    }
}
