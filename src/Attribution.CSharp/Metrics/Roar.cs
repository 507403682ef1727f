using Attribution.Models;
using Attribution.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// Trains a fresh model on <paramref name="maskedTrain"/> (the caller holds the training labels and options) and returns
/// it, in the caller's hands no longer: ROAR takes the logits [M, classes] of the masked test inputs from its forward, a
/// block at a time, and then disposes it. ROAR calls this once per point; it should start from the same initialisation
/// every call, so that the points differ only in what was removed.
/// </summary>
public delegate nn.Module<Tensor, Tensor> RoarRetraining(Tensor maskedTrain);

/// <summary>
/// A set of <paramref name="Count"/> inputs [Count, C, H, W] that ROAR masks a block of <paramref name="BlockSize"/>
/// inputs at a time: <paramref name="Inputs"/>(first, n) and <paramref name="Scores"/>(first, n) give a block's inputs
/// and the scores that rank their pixels (a method's maps, or any scores of the inputs' shape); both are read in order,
/// once per block, and disposed after use, so a set's maps are never whole in memory. Scores null: the random ranking.
/// </summary>
public sealed record RoarSet(long Count, Func<long, long, Tensor> Inputs, Func<long, long, Tensor>? Scores, long BlockSize = 1024)
{
    /// <summary>A set held in memory: <paramref name="inputs"/> and its <paramref name="scores"/> (null: the random ranking), as one block.</summary>
    public static RoarSet Whole(Tensor inputs, Tensor? scores)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        Func<long, long, Tensor>? scoresOf = scores is null ? null : (first, n) => scores.narrow(0, first, n).alias();
        return new RoarSet(inputs.shape[0], (first, n) => inputs.narrow(0, first, n).alias(), scoresOf, Math.Max(1, inputs.shape[0]));
    }
}

/// <summary>
/// ROAR, RemOve And Retrain (Hooker et al. 2019, "A Benchmark for Interpretability Methods in Deep Neural Networks",
/// Sec. 3): replace the most important fraction of the pixels of every training and test input (by the method's map)
/// with an uninformative value, retrain from scratch on the modified training set, and measure test accuracy. A ranking
/// that finds what the model uses makes accuracy fall faster than a random ranking does; retraining is what separates
/// "the information is gone" from "the model was never shown such inputs". The uninformative value is the training
/// mean per channel, as in the paper.
/// </summary>
/// <remarks>
/// The sets are masked a block at a time (<see cref="RoarSet"/>): the masked training set is assembled whole, because
/// the retraining shuffles it, while the test set is masked and predicted block by block. Tie-breaking and the random
/// ranking draw from generators that run through the blocks in order, so the numbers do not depend on the blocks.
/// </remarks>
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
        using var tieBreak = new Generator((ulong)seed, CPU);
        return RemoveMostImportant(inputs, maps, fraction, fill, tieBreak);
    }

    /// <summary>
    /// <see cref="RemoveMostImportant(Tensor, Tensor, double, Tensor, long)"/> breaking ties with draws from
    /// <paramref name="tieBreak"/>, one row per input: a set masked a block at a time from one generator is masked as
    /// the whole set at once would be.
    /// </summary>
    public static Tensor RemoveMostImportant(Tensor inputs, Tensor maps, double fraction, Tensor fill, Generator tieBreak)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(maps);
        ArgumentNullException.ThrowIfNull(fill);
        ArgumentNullException.ThrowIfNull(tieBreak);
        if (inputs.dim() != 4 || !maps.shape.SequenceEqual(inputs.shape))
            throw new ArgumentException($"Roar.RemoveMostImportant: inputs must be [B, C, H, W] and maps of the same shape; got [{string.Join(", ", inputs.shape)}] and [{string.Join(", ", maps.shape)}]");
        if (!(fraction >= 0 && fraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "Roar.RemoveMostImportant: the fraction must lie in [0, 1]");
        using var scope = NewDisposeScope();
        long b = inputs.shape[0], h = inputs.shape[2], w = inputs.shape[3], pixels = h * w;
        var scores = maps.detach().cpu().to(ScalarType.Float64).sum(1).reshape(b, pixels);
        // Most important first, ties in a seeded random order per input: the ranking every perturbation metric shares.
        var ranks = FeatureRanking.DescendingRanks(scores, tieBreak);
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
    /// The generator of the random ranking ROAR compares against: U(0, 1) scores shaped like each block, drawn for the
    /// training set's blocks and then the test set's, in order, from one CPU generator seeded from <paramref name="seed"/>.
    /// </summary>
    public static Generator RandomRanking(long seed) => new((ulong)Seeds.Derive(seed, "random-ranking"), CPU);

    /// <summary>
    /// One point of the ROAR curve: test accuracy in percent of a model retrained (by <paramref name="retrain"/>) on the
    /// training inputs with the <paramref name="fraction"/> most important pixels removed by their scores, tested on the
    /// test inputs with theirs removed by theirs. The two removals break ties with seeds derived from
    /// <paramref name="seed"/>, as does the random ranking of a set without scores.
    /// </summary>
    public static double Accuracy(RoarSet train, RoarSet test, IReadOnlyList<long> testLabels, Tensor fill, double fraction, long seed,
                                  RoarRetraining retrain, Device device)
    {
        var correct = Correct(train, test, testLabels, fill, fraction, seed, retrain, device);
        return 100.0 * correct.Count(c => c) / correct.Length;
    }

    /// <summary>
    /// <see cref="Accuracy"/> test input by test input: whether the retrained model predicts each masked test input's
    /// label. The accuracy is the percent of true values; per input, they let an interval over the test inputs be drawn
    /// (for this retrained model: the retraining's own noise is not in it). The retrained model sees the test inputs on
    /// <paramref name="device"/>.
    /// </summary>
    public static bool[] Correct(RoarSet train, RoarSet test, IReadOnlyList<long> testLabels, Tensor fill, double fraction, long seed,
                                 RoarRetraining retrain, Device device)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(testLabels);
        ArgumentNullException.ThrowIfNull(retrain);
        if (testLabels.Count != test.Count)
            throw new ArgumentException($"Roar.Accuracy: {testLabels.Count} labels for {test.Count} test inputs");
        using var random = train.Scores is null || test.Scores is null ? RandomRanking(seed) : null;
        using var trainTies = new Generator((ulong)Seeds.Derive(seed, "train"), CPU);
        using var testTies = new Generator((ulong)Seeds.Derive(seed, "test"), CPU);
        using var model = Retrained(train, fill, fraction, trainTies, random, retrain);
        var right = new bool[test.Count];
        ForEachBlock(test, fill, fraction, testTies, random, (first, masked) =>
        {
            using var logits = Training.Logits(model, masked, device);
            if (logits.dim() != 2 || logits.shape[0] != masked.shape[0])
                throw new ArgumentException($"Roar.Accuracy: the retrained model gave logits [{string.Join(", ", logits.shape)}] for {masked.shape[0]} test inputs; expected [{masked.shape[0]}, classes]");
            using var predicted = logits.argmax(1);
            var classes = predicted.data<long>().ToArray();
            for (int i = 0; i < classes.Length; i++) right[first + i] = classes[i] == testLabels[(int)first + i];
        });
        return right;
    }

    /// <summary>The model <paramref name="retrain"/> returns for the training set masked whole (it shuffles the set).</summary>
    private static nn.Module<Tensor, Tensor> Retrained(RoarSet train, Tensor fill, double fraction, Generator ties, Generator? random, RoarRetraining retrain)
    {
        Tensor? maskedTrain = null;
        try
        {
            ForEachBlock(train, fill, fraction, ties, random, (first, masked) =>
            {
                // made in the first block's dispose scope, so held apart from it
                maskedTrain ??= empty(masked.shape.Skip(1).Prepend(train.Count).ToArray(), masked.dtype).DetachFromDisposeScope();
                maskedTrain.narrow(0, first, masked.shape[0]).copy_(masked);
            });
            if (maskedTrain is null) throw new ArgumentException("Roar.Accuracy: the training set is empty");
            return retrain(maskedTrain);
        }
        finally
        {
            maskedTrain?.Dispose();
        }
    }

    /// <summary>
    /// Each block of <paramref name="set"/>, in order, masked and handed to <paramref name="use"/> with its first input's
    /// position (on the CPU, disposed after it returns); a set without scores is ranked by U(0, 1) draws from
    /// <paramref name="random"/>.
    /// </summary>
    private static void ForEachBlock(RoarSet set, Tensor fill, double fraction, Generator ties, Generator? random, Action<long, Tensor> use)
    {
        if (set.BlockSize < 1) throw new ArgumentException($"Roar: a block holds at least one input; got {set.BlockSize}");
        for (long first = 0; first < set.Count; first += set.BlockSize)
        {
            using var scope = NewDisposeScope();
            long n = Math.Min(set.BlockSize, set.Count - first);
            var inputs = set.Inputs(first, n);
            if (inputs.dim() < 1 || inputs.shape[0] != n)
                throw new ArgumentException($"Roar: a set's block of {n} inputs from {first} came as [{string.Join(", ", inputs.shape)}]");
            var scores = set.Scores is null ? rand(inputs.shape, generator: random) : set.Scores(first, n);
            use(first, RemoveMostImportant(inputs, scores, fraction, fill, ties));
        }
    }
}
