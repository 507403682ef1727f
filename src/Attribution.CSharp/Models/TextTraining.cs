using Attribution.Data;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>Training and evaluation of a <see cref="TextModel"/> on a <see cref="TextDataset"/>: <see cref="Training"/>'s loop (Adam, cross-entropy, seeded shuffling) on token ids, embedded inside the loop.</summary>
public static class TextTraining
{
    /// <summary>Trains <paramref name="model"/> in place; initialisation is the caller's (seed TorchSharp before building the model).</summary>
    public static TrainingReport Train(TextModel model, TextDataset data, TrainingOptions options, Device device, Progress? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        return Training.Train(model, data.Tokens, data.Labels, model.Classify, options, device, progress);
    }

    /// <summary>Logits [N, C] of every text, in eval mode, in chunks; returned on the CPU.</summary>
    public static Tensor Logits(TextModel model, TextDataset data, Device device, int batchSize = 256) =>
        Training.Logits(model, data.Tokens, model.Classify, device, batchSize);

    /// <summary>Fraction of texts whose arg-max logit is their label.</summary>
    public static double Accuracy(TextModel model, TextDataset data, Device device, int batchSize = 256)
    {
        using var scope = NewDisposeScope();
        var predicted = Logits(model, data, device, batchSize).argmax(1);
        return predicted.eq(data.Labels).to(ScalarType.Float64).mean().item<double>();
    }
}
