using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>How a <see cref="TextTransformer"/> turns its per-position outputs into one vector for the classifier.</summary>
public enum TransformerPooling
{
    /// <summary>The output at a learned class token placed before the first word (BERT's and DistilBERT's [CLS]).</summary>
    ClassToken,

    /// <summary>The mean of the outputs at the T word positions (padding included, as everywhere in <see cref="TextModel"/>).</summary>
    Mean,
}

/// <summary>
/// A small transformer encoder classifier, the "T" of Gat et al.'s architecture comparison (2022, Sec. 5.3, Fig. 3;
/// there a pre-trained DistilBERT, Sanh et al. 2019, here trained from scratch): token embedding; a learned class
/// token prepended; fixed sinusoidal position encodings (Vaswani et al. 2017, Sec. 3.5) added inside
/// <c>forward</c>; <see cref="Shape.Layers"/> pre-norm encoder layers (<see cref="PreNormEncoderLayer"/>); a final
/// layer norm; pooling; a fully connected layer to the logits.
/// <para><c>forward</c> takes the TOKEN embeddings [B, T, E] (<see cref="Embed"/> gives no position information), so
/// attributions are to the words, as for the other text models; the position encoding is a constant added inside.</para>
/// <para><b>Padding.</b> No key padding mask, the choice documented on <see cref="TextModel"/>: a mask needs each text's
/// length, which <c>forward</c> cannot recover from the embeddings once a sampling method has added noise to them, and
/// the gradient engine's chunks mix the sample points of several texts. &lt;pad&gt; embeds to zero, so a padding
/// position carries only its position encoding; the model is trained with the same trailing padding and learns
/// to give those keys little weight. Scores at padding positions are dropped afterwards from the dataset's lengths.</para>
/// Layer names: embedding, class_token, layers.{i}.*, norm, fc.
/// <para>Stages (<see cref="ILayeredModel"/>): <c>layer1</c> .. <c>layerL</c>, the output of each encoder layer
/// [B, 1 + T, E] (position 0 is the class token; <c>layer1</c> also prepends it and adds the position encoding);
/// <c>norm</c>, after the final layer norm [B, 1 + T, E], before pooling; <c>pool</c> [B, E]; <c>fc</c>, the logits.</para>
/// </summary>
public sealed class TextTransformer : TextModel, ILayeredModel
{
    /// <summary>Sizes of the layers and the pooling; part of the model's identity (and cache key). E must be a multiple of Heads.</summary>
    public sealed record Shape(int VocabularySize, int EmbeddingSize = 64, int Heads = 4, int Layers = 2, int FeedForward = 128,
                               int Classes = 2, double Dropout = 0.1, TransformerPooling Pooling = TransformerPooling.ClassToken);

    readonly Embedding embedding;
    readonly Parameter class_token;
    readonly ModuleList<PreNormEncoderLayer> layers;
    readonly LayerNorm norm;
    readonly Linear fc;

    public Shape Dimensions { get; }

    public TextTransformer(Shape shape) : base(nameof(TextTransformer))
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.VocabularySize < 2 || shape.EmbeddingSize < 1 || shape.Heads < 1 || shape.EmbeddingSize % shape.Heads != 0
            || shape.Layers < 1 || shape.FeedForward < 1 || shape.Classes < 2 || !(shape.Dropout >= 0 && shape.Dropout < 1))
            throw new ArgumentException($"TextTransformer: sizes must be positive (two classes at least), the embedding size a multiple of the heads, dropout in [0, 1); got {shape}", nameof(shape));
        Dimensions = shape;
        embedding = Embedding(shape.VocabularySize, shape.EmbeddingSize, padding_idx: Data.Vocabulary.Pad);
        // Drawn at the scale of the word embeddings (nn.Embedding initialises N(0, 1)), so the class token is not drowned.
        class_token = Parameter(randn(1, 1, shape.EmbeddingSize));
        layers = ModuleList(Enumerable.Range(0, shape.Layers)
            .Select(_ => new PreNormEncoderLayer(shape.EmbeddingSize, shape.Heads, shape.FeedForward, shape.Dropout)).ToArray());
        norm = LayerNorm(shape.EmbeddingSize);
        fc = Linear(shape.EmbeddingSize, shape.Classes);
        RegisterComponents();
    }

    public override int EmbeddingSize => Dimensions.EmbeddingSize;

    public override Tensor Embed(Tensor tokens) => embedding.forward(tokens);

    /// <summary>Logits [B, C] of token embeddings [B, T, E].</summary>
    public override Tensor forward(Tensor embeddings)
    {
        if (embeddings.dim() != 3 || embeddings.shape[2] != Dimensions.EmbeddingSize)
            throw new ArgumentException($"TextTransformer.forward takes embeddings [B, T, {Dimensions.EmbeddingSize}] (from Embed(tokens)); got [{string.Join(", ", embeddings.shape)}]");
        using var scope = NewDisposeScope();
        long b = embeddings.shape[0], t = embeddings.shape[1];
        var x = cat([class_token.expand(b, 1, Dimensions.EmbeddingSize), embeddings], 1)
                + PositionEncoding.Sinusoidal(t + 1, Dimensions.EmbeddingSize, embeddings.dtype, embeddings.device);
        foreach (var layer in layers) x = layer.forward(x);
        x = norm.forward(x);
        var pooled = Dimensions.Pooling == TransformerPooling.ClassToken ? x[.., 0] : x[.., 1..].mean([1]);
        return fc.forward(pooled).MoveToOuterDisposeScope();
    }

    string[]? stageNames;

    string[] StageNames => stageNames ??= Enumerable.Range(1, Dimensions.Layers).Select(i => $"layer{i}").Concat(["norm", "pool", "fc"]).ToArray();

    public IReadOnlyList<string> Stages => StageNames;
    public IReadOnlyList<string> ParameterStages => StageNames.Where(s => s != "pool").ToArray();

    public Tensor ForwardTo(string stage, Tensor input)
    {
        if (input.dim() != 3 || input.shape[2] != Dimensions.EmbeddingSize)
            throw new ArgumentException($"TextTransformer.ForwardTo takes embeddings [B, T, {Dimensions.EmbeddingSize}]; got [{string.Join(", ", input.shape)}]");
        return TextStages.Run(input, 0, Index(stage) + 1, Apply);
    }

    public Tensor ForwardFrom(string stage, Tensor activation) => TextStages.Run(activation, Index(stage) + 1, StageNames.Length, Apply);

    public Tensor ForwardStage(string stage, Tensor activation) => TextStages.Run(activation, Index(stage), Index(stage) + 1, Apply);

    public void Reinitialise(string stage, Generator generator)
    {
        int i = Index(stage);
        if (i < Dimensions.Layers)
        {
            TextStages.Defaults(layers[i], generator);
            if (i == 0)
            {
                using var noGrad = no_grad();
                using var fresh = randn(class_token.shape, class_token.dtype, class_token.device, generator: generator);
                class_token.copy_(fresh);
            }
        }
        else if (stage == "norm") TextStages.Defaults(norm, generator);
        else if (stage == "fc") TextStages.Linear(fc, generator);
        else throw new ArgumentException($"stage '{stage}' has no parameters; these do: {string.Join(", ", ParameterStages)}");
    }

    int Index(string stage) => TextStages.IndexOf(StageNames, stage, nameof(TextTransformer));

    Tensor Apply(int stage, Tensor h)
    {
        int layersCount = Dimensions.Layers;
        if (stage == 0)
        {
            long b = h.shape[0], t = h.shape[1];
            h = cat([class_token.expand(b, 1, Dimensions.EmbeddingSize), h], 1)
                + PositionEncoding.Sinusoidal(t + 1, Dimensions.EmbeddingSize, h.dtype, h.device);
        }
        if (stage < layersCount) return layers[stage].forward(h);
        if (stage == layersCount) return norm.forward(h);
        if (stage == layersCount + 1) return Dimensions.Pooling == TransformerPooling.ClassToken ? h[.., 0] : h[.., 1..].mean([1]);
        return fc.forward(h);
    }
}
