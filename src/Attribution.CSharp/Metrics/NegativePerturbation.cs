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
        long b = inputs.shape[0];
        var flatInputs = inputs.reshape(b, -1);
        long d = flatInputs.shape[1];
        var rank = FeatureRanking.AscendingRanks(maps.reshape(b, -1).cpu(), tieBreak);                   // rank[i, j]: position of feature j, 0 = least important
        var rows = new List<Tensor>();
        var cpuInputs = flatInputs.cpu();   // once, not once per fraction
        foreach (var fraction in Fractions)
        {
            long k = (long)Math.Round(fraction * d);
            var masked = cpuInputs.masked_fill(rank.lt(k), MaskValue).reshape(inputs.shape);
            rows.Add(Training.Logits(model, masked, device, batchSize).argmax(1));
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
