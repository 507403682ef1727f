using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Attribution.Models;

/// <summary>
/// Kim's (2014) convolutional sentence classifier, the CNN of Gat et al. (2022, Fig. 3; Zhang and Wallace 2015):
/// token embedding; one-dimensional convolutions of widths 3, 4 and 5 (each a linear map of the flattened windows) over the positions, ReLU, and the
/// maximum over positions of each filter; dropout; a fully connected layer to the logits. <c>forward</c>
/// takes embeddings [B, T, E] with T at least the widest filter (see <see cref="TextModel"/>).
/// Layer names: embedding, conv3, conv4, conv5, fc.
/// <para>Stages (<see cref="ILayeredModel"/>): <c>conv</c>, the ReLU outputs of the three filter banks per position
/// [B, T, 3F] (position t holds the windows that start at t; a window that would run past the end gives 0, which
/// leaves the max unchanged because ReLU outputs are >= 0), before pooling; <c>pool</c>, the max over positions
/// [B, 3F]; <c>fc</c>, dropout and the logits.</para>
/// </summary>
public sealed class TextCnn : TextModel, ILayeredModel
{
    /// <summary>Sizes of the layers; part of the model's identity (and cache key).</summary>
    public sealed record Shape(int VocabularySize, int EmbeddingSize = 64, int FiltersPerWidth = 32, int Classes = 2, double Dropout = 0.5);

    static readonly int[] Widths = [3, 4, 5];

    readonly Embedding embedding;
    // Each convolution is a Linear over the flattened windows [E * width] (unfold, then matmul): the same function as
    // Conv1d(E, F, width), but on CPU Conv1d's input gradient came out NaN in about one run in three when other
    // processes loaded the cores (the convolution backend, not the model), and gradients are what this model is for.
    readonly Linear conv3;
    readonly Linear conv4;
    readonly Linear conv5;
    readonly Dropout dropout;
    readonly Linear fc;

    public Shape Dimensions { get; }

    public TextCnn(Shape shape) : base(nameof(TextCnn))
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.VocabularySize < 2 || shape.EmbeddingSize < 1 || shape.FiltersPerWidth < 1 || shape.Classes < 2 || !(shape.Dropout >= 0 && shape.Dropout < 1))
            throw new ArgumentException($"TextCnn: sizes must be positive (two classes at least) and dropout in [0, 1); got {shape}", nameof(shape));
        Dimensions = shape;
        embedding = Embedding(shape.VocabularySize, shape.EmbeddingSize, padding_idx: Data.Vocabulary.Pad);
        conv3 = Linear(shape.EmbeddingSize * 3, shape.FiltersPerWidth);
        conv4 = Linear(shape.EmbeddingSize * 4, shape.FiltersPerWidth);
        conv5 = Linear(shape.EmbeddingSize * 5, shape.FiltersPerWidth);
        dropout = Dropout(shape.Dropout);
        fc = Linear(Widths.Length * shape.FiltersPerWidth, shape.Classes);
        RegisterComponents();
    }

    public override int EmbeddingSize => Dimensions.EmbeddingSize;

    public override Tensor Embed(Tensor tokens) => embedding.forward(tokens);

    /// <summary>Logits [B, C] of embeddings [B, T, E], T >= 5.</summary>
    public override Tensor forward(Tensor embeddings)
    {
        if (embeddings.dim() != 3 || embeddings.shape[2] != Dimensions.EmbeddingSize || embeddings.shape[1] < Widths[^1])
            throw new ArgumentException($"TextCnn.forward takes embeddings [B, T >= {Widths[^1]}, {Dimensions.EmbeddingSize}] (from Embed(tokens)); got [{string.Join(", ", embeddings.shape)}]");
        using var scope = NewDisposeScope();
        var features = new[] { (conv3, 3), (conv4, 4), (conv5, 5) }.Select(layer =>
        {
            var windows = embeddings.unfold(1, layer.Item2, 1).flatten(2);      // [B, T - width + 1, E * width]
            return functional.relu(layer.Item1.forward(windows)).max(1).values;  // max over positions: [B, F]
        }).ToArray();
        return fc.forward(dropout.forward(cat(features, 1))).MoveToOuterDisposeScope();
    }

    static readonly string[] StageNames = ["conv", "pool", "fc"];
    static readonly string[] ParameterStageNames = ["conv", "fc"];

    public IReadOnlyList<string> Stages => StageNames;
    public IReadOnlyList<string> ParameterStages => ParameterStageNames;

    public Tensor ForwardTo(string stage, Tensor input)
    {
        if (input.dim() != 3 || input.shape[2] != Dimensions.EmbeddingSize || input.shape[1] < Widths[^1])
            throw new ArgumentException($"TextCnn.ForwardTo takes embeddings [B, T >= {Widths[^1]}, {Dimensions.EmbeddingSize}]; got [{string.Join(", ", input.shape)}]");
        return TextStages.Run(input, 0, Index(stage) + 1, Apply);
    }

    public Tensor ForwardFrom(string stage, Tensor activation) => TextStages.Run(activation, Index(stage) + 1, StageNames.Length, Apply);

    public Tensor ForwardStage(string stage, Tensor activation) => TextStages.Run(activation, Index(stage), Index(stage) + 1, Apply);

    public void Reinitialise(string stage, Generator generator)
    {
        switch (stage)
        {
            case "conv": foreach (var layer in new[] { conv3, conv4, conv5 }) TextStages.Linear(layer, generator); break;
            case "fc": TextStages.Linear(fc, generator); break;
            default: throw new ArgumentException($"stage '{stage}' has no parameters; these do: {string.Join(", ", ParameterStageNames)}");
        }
    }

    static int Index(string stage) => TextStages.IndexOf(StageNames, stage, nameof(TextCnn));

    Tensor Apply(int stage, Tensor h) => stage switch
    {
        0 => PerPosition(h),
        1 => h.max(1).values,
        _ => fc.forward(dropout.forward(h)),
    };

    /// <summary>[B, T, 3F]: each bank's ReLU outputs by window start, zero-padded on the right to T positions.</summary>
    Tensor PerPosition(Tensor embeddings)
    {
        long t = embeddings.shape[1];
        var banks = new[] { (conv3, 3), (conv4, 4), (conv5, 5) }.Select(layer =>
        {
            var windows = embeddings.unfold(1, layer.Item2, 1).flatten(2);
            var features = functional.relu(layer.Item1.forward(windows));               // [B, T - width + 1, F]
            return functional.pad(features, [0, 0, 0, layer.Item2 - 1]);                 // zeros for the last width - 1 starts
        }).ToArray();
        return cat(banks, 2);
    }
}
