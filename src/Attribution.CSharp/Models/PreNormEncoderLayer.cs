using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>
/// One transformer encoder layer with the layer norms before each sublayer ("pre-norm", Xiong et al. 2020):
/// x + Attention(LN(x)), then x + FeedForward(LN(x)) with a GELU between two linear maps. Pre-norm trains stably
/// without a learning-rate warm-up, which matters for the few epochs a CPU budget allows.
/// Layer names: norm1, attention, norm2, ff1, ff2.
/// </summary>
public sealed class PreNormEncoderLayer : nn.Module<Tensor, Tensor>
{
    readonly LayerNorm norm1;
    readonly MultiHeadSelfAttention attention;
    readonly LayerNorm norm2;
    readonly Linear ff1;
    readonly Linear ff2;
    readonly Dropout dropout;

    public PreNormEncoderLayer(int width, int heads, int feedForward, double dropout) : base(nameof(PreNormEncoderLayer))
    {
        if (feedForward < 1)
            throw new ArgumentException($"PreNormEncoderLayer: the feed-forward width must be positive; got {feedForward}", nameof(feedForward));
        norm1 = LayerNorm(width);
        attention = new MultiHeadSelfAttention(width, heads, dropout);
        norm2 = LayerNorm(width);
        ff1 = Linear(width, feedForward);
        ff2 = Linear(feedForward, width);
        this.dropout = Dropout(dropout);
        RegisterComponents();
    }

    /// <summary>[B, T, E] -> [B, T, E].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x + dropout.forward(attention.forward(norm1.forward(x)));
        var y = h + dropout.forward(ff2.forward(functional.gelu(ff1.forward(norm2.forward(h)))));
        return y.MoveToOuterDisposeScope();
    }
}
