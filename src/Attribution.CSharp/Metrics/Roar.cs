using Attribution.Runtime;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// Trains a fresh model on <paramref name="maskedTrain"/> (the caller holds the training labels and options) and returns
/// its logits [M, classes] on <paramref name="maskedTest"/>. ROAR calls it once per point; it should start from the same
/// initialisation every call, so that the points differ only in what was removed.
/// </summary>
public delegate Tensor RoarRetraining(Tensor maskedTrain, Tensor maskedTest);

/// <summary>
/// ROAR, RemOve And Retrain (Hooker et al. 2019, "A Benchmark for Interpretability Methods in Deep Neural Networks",
/// Sec. 3): replace the most important fraction of the pixels of every training and test input (by the method's map)
/// with an uninformative value, retrain from scratch on the modified training set, and measure test accuracy. A ranking
/// that finds what the model uses makes accuracy fall faster than a random ranking does; retraining is what separates
/// "the information is gone" from "the model was never shown such inputs". The uninformative value is the training
/// mean per channel, as in the paper.
/// </summary>
public static class Roar
{
    /// <summary>
    /// Inputs [B, C, H, W] (returned on the CPU) with the round(<paramref name="fraction"/> H W) most important pixels of
    /// each replaced by <paramref name="fill"/> [1, C, 1, 1] in every channel. A pixel's importance is its map summed over
    /// channels (in float64), ranked by <see cref="FeatureRanking.DescendingRanks(Tensor, long)"/>: ties are broken by a
    /// random order per input drawn from <paramref name="seed"/>, so a map with many equal values (exact zeros) gains
    /// nothing from the pixels' storage order.
    /// </summary>
    public static Tensor RemoveMostImportant(Tensor inputs, Tensor maps, double fraction, Tensor fill, long seed)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(maps);
        ArgumentNullException.ThrowIfNull(fill);
        if (inputs.dim() != 4 || !maps.shape.SequenceEqual(inputs.shape))
            throw new ArgumentException($"Roar.RemoveMostImportant: inputs must be [B, C, H, W] and maps of the same shape; got [{string.Join(", ", inputs.shape)}] and [{string.Join(", ", maps.shape)}]");
        if (!(fraction >= 0 && fraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "Roar.RemoveMostImportant: the fraction must lie in [0, 1]");
        using var scope = NewDisposeScope();
        long b = inputs.shape[0], h = inputs.shape[2], w = inputs.shape[3], pixels = h * w;
        var scores = maps.detach().cpu().to(ScalarType.Float64).sum(1).reshape(b, pixels);
        // Most important first, ties in a seeded random order per input: the ranking every perturbation metric shares.
        var ranks = FeatureRanking.DescendingRanks(scores, seed);
        long k = (long)Math.Round(fraction * pixels);
        var removed = ranks.lt(k);
        var cpuInputs = inputs.cpu();
        return where(removed.reshape(b, 1, h, w), fill.cpu().expand_as(cpuInputs), cpuInputs).MoveToOuterDisposeScope();
    }

    /// <summary>The uninformative value: the mean of the training inputs [N, C, H, W] per channel, [1, C, 1, 1].</summary>
    public static Tensor ChannelMean(Tensor trainInputs)
    {
        ArgumentNullException.ThrowIfNull(trainInputs);
        return trainInputs.mean([0L, 2L, 3L], keepdim: true);
    }

    /// <summary>
    /// The random ranking ROAR compares against: U(0, 1) scores shaped like the training maps and like the test maps,
    /// drawn in that order from one CPU generator seeded with <paramref name="seed"/>.
    /// </summary>
    public static (Tensor Train, Tensor Test) RandomScores(long[] trainShape, long[] testShape, long seed)
    {
        using var generator = new Generator((ulong)seed, CPU);
        var train = rand(trainShape, generator: generator);
        var test = rand(testShape, generator: generator);
        return (train, test);
    }

    /// <summary>
    /// One point of the ROAR curve: test accuracy in percent of a model retrained (by <paramref name="retrain"/>) on the
    /// training inputs with the <paramref name="fraction"/> most important pixels removed by <paramref name="trainScores"/>,
    /// tested on the test inputs with theirs removed by <paramref name="testScores"/> (maps, or any scores of the inputs'
    /// shape). The two removals break ties with seeds derived from <paramref name="seed"/>.
    /// </summary>
    public static double Accuracy(Tensor trainInputs, Tensor trainScores, Tensor testInputs, Tensor testScores, IReadOnlyList<long> testLabels,
                                  Tensor fill, double fraction, long seed, RoarRetraining retrain)
    {
        var correct = Correct(trainInputs, trainScores, testInputs, testScores, testLabels, fill, fraction, seed, retrain);
        return 100.0 * correct.Count(c => c) / correct.Length;
    }

    /// <summary>
    /// <see cref="Accuracy"/> test input by test input: whether the retrained model predicts each masked test input's
    /// label. The accuracy is the percent of true values; per input, they let an interval over the test inputs be drawn
    /// (for this retrained model: the retraining's own noise is not in it).
    /// </summary>
    public static bool[] Correct(Tensor trainInputs, Tensor trainScores, Tensor testInputs, Tensor testScores, IReadOnlyList<long> testLabels,
                                 Tensor fill, double fraction, long seed, RoarRetraining retrain)
    {
        ArgumentNullException.ThrowIfNull(testLabels);
        ArgumentNullException.ThrowIfNull(retrain);
        if (testLabels.Count != testInputs.shape[0])
            throw new ArgumentException($"Roar.Accuracy: {testLabels.Count} labels for {testInputs.shape[0]} test inputs");
        using var scope = NewDisposeScope();
        var maskedTrain = RemoveMostImportant(trainInputs, trainScores, fraction, fill, Seeds.Derive(seed, "train"));
        var maskedTest = RemoveMostImportant(testInputs, testScores, fraction, fill, Seeds.Derive(seed, "test"));
        var logits = retrain(maskedTrain, maskedTest);
        if (logits.dim() != 2 || logits.shape[0] != testLabels.Count)
            throw new ArgumentException($"Roar.Accuracy: the retraining returned logits [{string.Join(", ", logits.shape)}] for {testLabels.Count} test inputs; expected [{testLabels.Count}, classes]");
        var predicted = logits.argmax(1).cpu().data<long>().ToArray();
        return predicted.Select((p, i) => p == testLabels[i]).ToArray();
    }
}
