using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>How a <see cref="TextBiLstm"/> turns its per-position outputs into one vector for the classifier.</summary>
public enum SequencePooling
{
    /// <summary>The last hidden state of each direction, concatenated (the paper's "BiLSTM which feeds a fully connected layer").</summary>
    FinalStates,

    /// <summary>The maximum over positions of the concatenated forward and backward outputs (Conneau et al. 2017).</summary>
    MaxOverTime,
}

/// <summary>
/// The text model of Gat et al. (2022, Sec. 5.1): token embedding, a one-layer bidirectional LSTM, and a fully
/// connected layer from the pooled hidden states to the logits. <c>forward</c> takes embeddings [B, T, E]
/// (see <see cref="TextModel"/> for why, and for how padding is handled). Layer names (embedding, lstm, fc)
/// are stable: weights files use them.
/// <para>Stages (<see cref="ILayeredModel"/>), over the embeddings: <c>lstm</c>, the per-position outputs of both
/// directions [B, T, 2H] (forward half first), before pooling (InputIBA's feature bottleneck sits here, the paper's
/// "last LSTM layer"); <c>pool</c>, the pooled vector [B, 2H]; <c>fc</c>, the logits. With
/// <see cref="SequencePooling.FinalStates"/>, <c>pool</c> reads the forward half at position T-1 and the backward half
/// at position 0 of the <c>lstm</c> outputs: for a one-layer LSTM those are its final hidden states.</para>
/// </summary>
public sealed class TextBiLstm : TextModel, ILayeredModel
{
    /// <summary>Sizes of the layers and the pooling; part of the model's identity (and cache key).</summary>
    public sealed record Shape(int VocabularySize, int EmbeddingSize = 64, int Hidden = 64, int Classes = 2,
                               SequencePooling Pooling = SequencePooling.FinalStates);

    readonly Embedding embedding;
    readonly LSTM lstm;
    readonly Linear fc;

    public Shape Dimensions { get; }

    public TextBiLstm(Shape shape) : base(nameof(TextBiLstm))
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.VocabularySize < 2 || shape.EmbeddingSize < 1 || shape.Hidden < 1 || shape.Classes < 2)
            throw new ArgumentException($"TextBiLstm: sizes must be positive, with at least the two special tokens and two classes; got {shape}", nameof(shape));
        Dimensions = shape;
        embedding = Embedding(shape.VocabularySize, shape.EmbeddingSize, padding_idx: Data.Vocabulary.Pad);
        lstm = LSTM(shape.EmbeddingSize, shape.Hidden, numLayers: 1, batchFirst: true, bidirectional: true);
        fc = Linear(2 * shape.Hidden, shape.Classes);
        RegisterComponents();
    }

    public override int EmbeddingSize => Dimensions.EmbeddingSize;

    public override Tensor Embed(Tensor tokens) => embedding.forward(tokens);

    /// <summary>Logits [B, C] of embeddings [B, T, E].</summary>
    public override Tensor forward(Tensor embeddings)
    {
        if (embeddings.dim() != 3 || embeddings.shape[2] != Dimensions.EmbeddingSize)
            throw new ArgumentException($"TextBiLstm.forward takes embeddings [B, T, {Dimensions.EmbeddingSize}] (from Embed(tokens)); got [{string.Join(", ", embeddings.shape)}]");
        using var scope = NewDisposeScope();
        var (output, hidden, _) = lstm.forward(embeddings);
        // hidden: [directions, B, H]; index 0 is the forward direction after position T-1, 1 the backward one after position 0.
        var pooled = Dimensions.Pooling == SequencePooling.FinalStates
            ? cat([hidden[0], hidden[1]], 1)
            : output.max(1).values;
        return fc.forward(pooled).MoveToOuterDisposeScope();
    }

    static readonly string[] StageNames = ["lstm", "pool", "fc"];
    static readonly string[] ParameterStageNames = ["lstm", "fc"];

    public IReadOnlyList<string> Stages => StageNames;
    public IReadOnlyList<string> ParameterStages => ParameterStageNames;

    public Tensor ForwardTo(string stage, Tensor input)
    {
        if (input.dim() != 3 || input.shape[2] != Dimensions.EmbeddingSize)
            throw new ArgumentException($"TextBiLstm.ForwardTo takes embeddings [B, T, {Dimensions.EmbeddingSize}]; got [{string.Join(", ", input.shape)}]");
        return TextStages.Run(input, 0, Index(stage) + 1, Apply);
    }

    public Tensor ForwardFrom(string stage, Tensor activation) => TextStages.Run(activation, Index(stage) + 1, StageNames.Length, Apply);

    public Tensor ForwardStage(string stage, Tensor activation) => TextStages.Run(activation, Index(stage), Index(stage) + 1, Apply);

    public void Reinitialise(string stage, Generator generator)
    {
        switch (stage)
        {
            case "lstm": TextStages.Uniform(lstm, 1.0 / Math.Sqrt(Dimensions.Hidden), generator); break;
            case "fc": TextStages.Linear(fc, generator); break;
            default: throw new ArgumentException($"stage '{stage}' has no parameters; these do: {string.Join(", ", ParameterStageNames)}");
        }
    }

    static int Index(string stage) => TextStages.IndexOf(StageNames, stage, nameof(TextBiLstm));

    Tensor Apply(int stage, Tensor h) => stage switch
    {
        0 => lstm.forward(h).Item1,
        1 => Dimensions.Pooling == SequencePooling.FinalStates
            ? cat([h[.., -1, ..(int)Dimensions.Hidden], h[.., 0, (int)Dimensions.Hidden..]], 1)
            : h.max(1).values,
        _ => fc.forward(h),
    };
}
