using System.Diagnostics;
using Attribution.Data;
using Attribution.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>Hyperparameters of supervised training; all of them are part of a trained model's identity.</summary>
public sealed record TrainingOptions(int Epochs = 4, int BatchSize = 128, double LearningRate = 1e-3, long Seed = 0);

/// <summary>What training did: loss per epoch and wall time.</summary>
public sealed record TrainingReport(IReadOnlyList<double> EpochLosses, double Seconds);

/// <summary>Progress of a long step: done out of total, with a short message.</summary>
public delegate void Progress(long done, long total, string message);

/// <summary>Adam on the cross-entropy loss, with seeded shuffling; and batched evaluation.</summary>
public static class Training
{
    /// <summary>
    /// Trains <paramref name="model"/> in place. Shuffling draws from a generator seeded from
    /// (options.Seed, "shuffle"); initialisation is the caller's (see <see cref="Seeds"/>).
    /// </summary>
    public static TrainingReport Train(nn.Module<Tensor, Tensor> model, ImageDataset data, TrainingOptions options, Device device, Progress? progress = null) =>
        Train(model, data.Images, data.Labels, model.forward, options, device, progress);

    /// <summary>
    /// Trains <paramref name="model"/> in place on rows of <paramref name="inputs"/> (any dtype: images, token ids)
    /// with labels [N], where <paramref name="logitsOf"/> maps a batch of rows to logits (e.g. embed, then forward).
    /// Shuffling as in the image overload.
    /// </summary>
    public static TrainingReport Train(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor labels, Func<Tensor, Tensor> logitsOf,
                                       TrainingOptions options, Device device, Progress? progress = null)
    {
        var clock = Stopwatch.StartNew();
        model.to(device).train();
        using var optimizer = optim.Adam(model.parameters(), options.LearningRate);
        using var shuffle = new Generator((ulong)Seeds.Derive(options.Seed, "shuffle"), CPU);
        var losses = new List<double>();
        long n = labels.shape[0];
        long batches = (n + options.BatchSize - 1) / options.BatchSize;
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            double total = 0;
            using var order = randperm(n, generator: shuffle);
            for (long b = 0; b < batches; b++)
            {
                using var scope = NewDisposeScope();
                var idx = order.narrow(0, b * options.BatchSize, Math.Min(options.BatchSize, n - b * options.BatchSize));
                var x = inputs.index_select(0, idx).to(device);
                var y = labels.index_select(0, idx).to(device);
                optimizer.zero_grad();
                var loss = nn.functional.cross_entropy(logitsOf(x), y);
                loss.backward();
                optimizer.step();
                total += loss.item<float>() * idx.shape[0];
                if (b % 50 == 0) progress?.Invoke(epoch * batches + b, options.Epochs * batches, $"epoch {epoch + 1}/{options.Epochs}");
            }
            losses.Add(total / n);
        }
        model.eval();
        progress?.Invoke(options.Epochs * batches, options.Epochs * batches, "trained");
        return new TrainingReport(losses, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Logits of every image, computed in eval mode in chunks of <paramref name="batchSize"/>; returned on the CPU.</summary>
    public static Tensor Logits(nn.Module<Tensor, Tensor> model, Tensor images, Device device, int batchSize = 1024) =>
        Logits(model, images, model.forward, device, batchSize);

    /// <summary>
    /// Logits <paramref name="logitsOf"/>(rows) of every row of <paramref name="inputs"/>, in eval mode, in chunks of
    /// <paramref name="batchSize"/> rows, capped on a CPU at <see cref="Attribution.Methods.ExplainOptions.CpuChunkValues"/> input values as
    /// the attribution chunks are (6 rows of 3x224x224: a chunk of 1,024 such images held about 4 GB of ResNet-18's
    /// activations for 200 images); returned on the CPU.
    /// </summary>
    public static Tensor Logits(nn.Module<Tensor, Tensor> model, Tensor inputs, Func<Tensor, Tensor> logitsOf, Device device, int batchSize = 1024)
    {
        model.eval();
        using var noGrad = no_grad();
        var parts = new List<Tensor>();
        long chunk = Attribution.Methods.ExplainOptions.RowsPerChunk(batchSize, inputs, device);
        for (long start = 0; start < inputs.shape[0]; start += chunk)
        {
            using var scope = NewDisposeScope();
            var x = inputs.narrow(0, start, Math.Min(chunk, inputs.shape[0] - start)).to(device);
            parts.Add(logitsOf(x).cpu().MoveToOuterDisposeScope());
        }
        var all = cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        return all;
    }

    /// <summary>Fraction of images whose arg-max logit is their label.</summary>
    public static double Accuracy(nn.Module<Tensor, Tensor> model, ImageDataset data, Device device, int batchSize = 1024)
    {
        using var scope = NewDisposeScope();
        var predicted = Logits(model, data.Images, device, batchSize).argmax(1);
        return predicted.eq(data.Labels).to(ScalarType.Float64).mean().item<double>();
    }
}
