using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>
/// The unidirectional LSTM of Gat et al.'s architecture comparison (2022, Sec. 5.3, Fig. 3, "L"): token embedding,
/// one LSTM layer reading left to right, and a fully connected layer from the pooled hidden states to the logits.
/// The BiLSTM (<see cref="TextBiLstm"/>) is the same model with a second, right-to-left direction.
/// <c>forward</c> takes embeddings [B, T, E] and does not mask (see <see cref="TextModel"/>).
/// <para>The default pooling is <see cref="SequencePooling.MaxOverTime"/>, not the final state: on SpamAssassin
/// (T = 128, 3 epochs) the final state after position T-1 reached 73% test accuracy, barely above the 69% of
/// always answering ham, because the evidence (the subject comes first) must survive up to 128 steps of one
/// direction, while max-over-time pooling reached 87% (docs/data.md). The BiLSTM does not have this problem: its
/// backward direction ends at position 0. <see cref="SequencePooling.FinalStates"/> stays available; it uses the
/// state after position T-1, i.e. after any trailing padding.</para>
/// Layer names (embedding, lstm, fc) are those of <see cref="TextBiLstm"/>, and so are the stages
/// (<see cref="ILayeredModel"/>): <c>lstm</c> (per-position outputs [B, T, H], before pooling), <c>pool</c> ([B, H];
/// with <see cref="SequencePooling.FinalStates"/> the output at position T-1), <c>fc</c> (logits).
/// </summary>
public sealed class TextLstm : TextModel, ILayeredModel
{
    /// <summary>Sizes of the layers and the pooling; part of the model's identity (and cache key).</summary>
    public sealed record Shape(int VocabularySize, int EmbeddingSize = 64, int Hidden = 64, int Classes = 2,
                               SequencePooling Pooling = SequencePooling.MaxOverTime);

    readonly Embedding embedding;
    readonly LSTM lstm;
    readonly Linear fc;

    public Shape Dimensions { get; }

    public TextLstm(Shape shape) : base(nameof(TextLstm))
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.VocabularySize < 2 || shape.EmbeddingSize < 1 || shape.Hidden < 1 || shape.Classes < 2)
            throw new ArgumentException($"TextLstm: sizes must be positive, with at least the two special tokens and two classes; got {shape}", nameof(shape));
        Dimensions = shape;
        embedding = Embedding(shape.VocabularySize, shape.EmbeddingSize, padding_idx: Data.Vocabulary.Pad);
        lstm = LSTM(shape.EmbeddingSize, shape.Hidden, numLayers: 1, batchFirst: true, bidirectional: false);
        fc = Linear(shape.Hidden, shape.Classes);
        RegisterComponents();
    }

    public override int EmbeddingSize => Dimensions.EmbeddingSize;

    public override Tensor Embed(Tensor tokens) => embedding.forward(tokens);

    /// <summary>Logits [B, C] of embeddings [B, T, E].</summary>
    public override Tensor forward(Tensor embeddings)
    {
        if (embeddings.dim() != 3 || embeddings.shape[2] != Dimensions.EmbeddingSize)
            throw new ArgumentException($"TextLstm.forward takes embeddings [B, T, {Dimensions.EmbeddingSize}] (from Embed(tokens)); got [{string.Join(", ", embeddings.shape)}]");
        using var scope = NewDisposeScope();
        var (output, hidden, _) = lstm.forward(embeddings);
        // hidden: [1, B, H], the state after position T-1.
        var pooled = Dimensions.Pooling == SequencePooling.FinalStates ? hidden[0] : output.max(1).values;
        return fc.forward(pooled).MoveToOuterDisposeScope();
    }

    static readonly string[] StageNames = ["lstm", "pool", "fc"];
    static readonly string[] ParameterStageNames = ["lstm", "fc"];

    public IReadOnlyList<string> Stages => StageNames;
    public IReadOnlyList<string> ParameterStages => ParameterStageNames;

    public Tensor ForwardTo(string stage, Tensor input)
    {
        if (input.dim() != 3 || input.shape[2] != Dimensions.EmbeddingSize)
            throw new ArgumentException($"TextLstm.ForwardTo takes embeddings [B, T, {Dimensions.EmbeddingSize}]; got [{string.Join(", ", input.shape)}]");
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

    static int Index(string stage) => TextStages.IndexOf(StageNames, stage, nameof(TextLstm));

    Tensor Apply(int stage, Tensor h) => stage switch
    {
        0 => lstm.forward(h).Item1,
        1 => Dimensions.Pooling == SequencePooling.FinalStates ? h[.., -1] : h.max(1).values,
        _ => fc.forward(h),
    };
}
