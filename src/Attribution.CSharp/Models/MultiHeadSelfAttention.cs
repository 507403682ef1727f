using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>
/// Multi-head scaled dot-product self-attention (Vaswani et al. 2017, Eq. 1 and Sec. 3.2.2) over [B, T, E], written
/// from <c>Linear</c> layers, <c>matmul</c> and <c>softmax</c> only. Every key is attended to (no mask): see
/// <see cref="TextTransformer"/> for the padding choice. Writing it out keeps the input gradient an ordinary
/// chain of differentiable tensor operations that the tests check against finite differences, instead of
/// depending on a fused native kernel's backward. Layer names: qkv (one E -> 3E projection), out.
/// </summary>
public sealed class MultiHeadSelfAttention : nn.Module<Tensor, Tensor>
{
    readonly Linear qkv;
    readonly Linear @out;
    readonly Dropout dropout;
    readonly int heads;
    readonly int width;

    /// <summary>Attention over vectors of width <paramref name="width"/> with <paramref name="heads"/> heads of width / heads each.</summary>
    public MultiHeadSelfAttention(int width, int heads, double dropout) : base(nameof(MultiHeadSelfAttention))
    {
        if (width < 1 || heads < 1 || width % heads != 0)
            throw new ArgumentException($"MultiHeadSelfAttention: the width must be a positive multiple of the number of heads; got width {width}, heads {heads}");
        this.width = width;
        this.heads = heads;
        qkv = Linear(width, 3 * width);
        @out = Linear(width, width);
        this.dropout = Dropout(dropout);
        RegisterComponents();
    }

    /// <summary>[B, T, E] -> [B, T, E]: each position a softmax-weighted mixture of every position's values, per head.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], d = width / heads;
        var projected = qkv.forward(x).view(b, t, 3, heads, d).permute(2, 0, 3, 1, 4);    // [3, B, H, T, D]
        var (q, k, v) = (projected[0], projected[1], projected[2]);
        var scores = q.matmul(k.transpose(-2, -1)).div(Math.Sqrt(d));                    // [B, H, T, T]
        var weights = dropout.forward(functional.softmax(scores, -1));
        var context = weights.matmul(v).transpose(1, 2).reshape(b, t, width);              // heads side by side
        return @out.forward(context).MoveToOuterDisposeScope();
    }
}
