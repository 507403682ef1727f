using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// Negative perturbation (Gat et al. 2022, Sec. 5.2): for each fraction q, replace the q*D least important
/// features of every input (lowest attribution first) by <c>MaskValue</c> (0 = black) and record the
/// model's predictions. Ties in the ranking are broken by a seeded random order, so that a map with many
/// equal values (e.g. exactly zero gradients) is not favoured by the features' storage order.
/// From the predictions: post-hoc accuracy (against the labels) and post-hoc consistency (agreement with
/// the unmasked prediction); each curve's AUC is the trapezoid over q of the value in percent.
/// <para>Written once over an <see cref="IFeatureSpace"/> (<see cref="MaskedPredictions(IFeatureSpace, Tensor, IReadOnlyList{double}, Generator, int)"/>);
/// the model-and-inputs overloads rank every element of the inputs (<see cref="ElementSpace"/>: images and waveforms),
/// <see cref="TokenMasking"/> the real tokens of texts.</para>
/// </summary>
public sealed class NegativePerturbation
{
    public NegativePerturbation(IReadOnlyList<double>? fractions = null, double maskValue = 0.0)
    {
        Fractions = fractions ?? Enumerable.Range(1, 9).Select(i => i / 10.0).ToArray();
        if (Fractions.Count < 2 || Fractions.Any(f => !(f > 0 && f < 1)) || Fractions.Zip(Fractions.Skip(1)).Any(p => p.Second <= p.First))
            throw new ArgumentException("fractions must be at least two strictly increasing values in (0, 1)");
        MaskValue = maskValue;
    }

    public IReadOnlyList<double> Fractions { get; }
    public double MaskValue { get; }

    /// <summary>
    /// Predicted class of every input after masking each fraction, [F, B] (int64, CPU). Features are the
    /// elements of an input; maps must have the inputs' shape.
    /// </summary>
    public Tensor MaskedPredictions(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor maps, long seed, Device device, int batchSize = 1024)
    {
        using var generator = new Generator((ulong)seed, CPU);
        return MaskedPredictions(model, inputs, maps, generator, device, batchSize);
    }

    /// <summary>
    /// <see cref="MaskedPredictions(nn.Module{Tensor, Tensor}, Tensor, Tensor, long, Device, int)"/> with ties broken by
    /// draws from <paramref name="tieBreak"/>: a set of inputs masked a block at a time from one generator (blocks a
    /// multiple of <paramref name="batchSize"/>) gives the predictions of the whole set at once.
    /// </summary>
    public Tensor MaskedPredictions(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor maps, Generator tieBreak, Device device, int batchSize = 1024)
    {
        if (!maps.shape.SequenceEqual(inputs.shape))
            throw new ArgumentException($"maps [{string.Join(", ", maps.shape)}] must have the inputs' shape [{string.Join(", ", inputs.shape)}]");
        using var scope = NewDisposeScope();
        return MaskedPredictions(new ElementSpace(model, inputs, MaskValue, device), maps, tieBreak, batchSize).MoveToOuterDisposeScope();
    }

    /// <summary>Predicted class [F, B] (int64, CPU) of every input of <paramref name="space"/> after masking each of this metric's fractions.</summary>
    public Tensor MaskedPredictions(IFeatureSpace space, Tensor maps, Generator tieBreak, int batchSize = 1024) =>
        MaskedPredictions(space, maps, Fractions, tieBreak, batchSize);

    /// <summary>
    /// Negative perturbation over <paramref name="space"/>, the one implementation: for each fraction q, the
    /// round(q * real count) least important real features of every input (half to even; lowest score first, ties broken
    /// by draws from <paramref name="tieBreak"/>, one row per input) go to the substrate, and the model predicts again,
    /// every input at once, <paramref name="batchSize"/> at a time. Returns the predicted classes [F, B] (int64, CPU).
    /// </summary>
    public static Tensor MaskedPredictions(IFeatureSpace space, Tensor maps, IReadOnlyList<double> fractions, Generator tieBreak, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(space);
        ArgumentNullException.ThrowIfNull(fractions);
        ArgumentNullException.ThrowIfNull(tieBreak);
        if (fractions.Any(f => !(f >= 0 && f <= 1))) throw new ArgumentException("fractions must be in [0, 1]", nameof(fractions));
        using var scope = NewDisposeScope();
        // Rows are ranked and masked a piece at a time: an input's ranking and predictions depend on its own row only, and
        // the tie-breaking generator runs through the pieces' rows in order, as through the block's. A block of 1,024
        // images at 3x224x224 ranked at once held about 7 GB of sort keys and ranks.
        long count = space.Count, piece = Math.Max(1, RankedValuesPerPiece / Math.Max(1, space.Slots));
        var pieces = new List<Tensor>();
        for (long start = 0; start < count; start += piece)
        {
            using var pieceScope = NewDisposeScope();
            long n = Math.Min(piece, count - start);
            var rows = n == count ? space : space.Rows(Enumerable.Range(0, (int)n).Select(i => start + i).ToArray());
            pieces.Add(MaskedPredictionsOfRows(rows, maps.narrow(0, start, n), fractions, tieBreak, batchSize).MoveToOuterDisposeScope());
        }
        return cat(pieces, 1).MoveToOuterDisposeScope();
    }

    /// <summary>The most feature values (inputs x features) ranked at once: 2^24, every input of a block of Fashion-MNIST images, 111 of 3x224x224.</summary>
    const long RankedValuesPerPiece = 1L << 24;

    static Tensor MaskedPredictionsOfRows(IFeatureSpace space, Tensor maps, IReadOnlyList<double> fractions, Generator tieBreak, int batchSize)
    {
        using var scope = NewDisposeScope();
        var rank = FeatureRanking.AscendingRanks(space.Scores(maps), space.Real, tieBreak);     // rank[i, j]: position of feature j, 0 = least important
        var real = FeatureSpace.RealCounts(space).to(ScalarType.Float64);
        var rows = new List<Tensor>();
        foreach (var fraction in fractions)
        {
            // one masked copy of the inputs at a time: at 3x224x224 a block's copy is 600 MB, and nine fractions' copies
            // held to the end took 12 GB with the ranking
            using var perFraction = NewDisposeScope();
            var k = real.mul(fraction).round().to(ScalarType.Int64).unsqueeze(1);               // torch's round is half to even, as Math.Round's default
            rows.Add(space.Logits(space.Perturb(rank.lt(k).unsqueeze(1)), batchSize).argmax(1).MoveToOuterDisposeScope());
        }
        return stack(rows).MoveToOuterDisposeScope();
    }

    /// <summary>Percent of predictions [F, B] equal to <paramref name="reference"/> [B], per fraction.</summary>
    public static double[] AgreementPercent(Tensor predictions, Tensor reference)
    {
        using var scope = NewDisposeScope();
        return predictions.eq(reference.cpu().unsqueeze(0)).to(ScalarType.Float64).mean([1]).mul(100).data<double>().ToArray();
    }

    /// <summary>AUC of a curve over this metric's fractions.</summary>
    public double AreaUnder(IReadOnlyList<double> curve) => Auc.Trapezoid(Fractions, curve);
}
