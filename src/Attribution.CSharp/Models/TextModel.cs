using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// A text classifier whose <c>forward</c> takes EMBEDDINGS [B, T, E] (float32), not token ids, and returns logits
/// [B, C]. Texts are discrete, so gradients are taken with respect to the embeddings (Gat et al. 2022, Sec. 5.1):
/// <c>method.Explain(model, model.Embed(tokens), targets, options)</c> runs every gradient method unchanged, and a
/// word's score is the sum of its coordinates' scores (<see cref="Methods.TokenScores"/>).
/// <para><b>Padding.</b> <c>forward</c> is a pure, batched function of the whole [B, T, E] tensor: it does not mask.
/// Token id 0 (&lt;pad&gt;) embeds to the zero vector, which training never changes, and models are trained on
/// sequences padded exactly like the ones they explain, so trailing zero vectors are part of the input
/// distribution. Two alternatives were rejected: lengths held on the model for "the current batch" do not line
/// up with the gradient engine, which expands every input into many sample points and cuts the points of
/// several inputs into chunks; and detecting padding as all-zero embeddings breaks for sampling methods
/// (SmoothGrad, Functional Information), whose noise turns every padding vector into a non-zero one. Scores at
/// padding positions are dropped afterwards, by the lengths the dataset keeps
/// (<see cref="Methods.TokenScores.Sum"/>).</para>
/// </summary>
public abstract class TextModel : nn.Module<Tensor, Tensor>
{
    protected TextModel(string name) : base(name) { }

    /// <summary>Width E of a token's embedding.</summary>
    public abstract int EmbeddingSize { get; }

    /// <summary>Embeddings [B, T, E] of token ids [B, T] (int64); id 0 gives the zero vector. Differentiable in the embedding weights.</summary>
    public abstract Tensor Embed(Tensor tokens);

    /// <summary>Logits of token ids [B, T]: <c>forward(Embed(tokens))</c>.</summary>
    public Tensor Classify(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        return forward(Embed(tokens)).MoveToOuterDisposeScope();
    }
}
