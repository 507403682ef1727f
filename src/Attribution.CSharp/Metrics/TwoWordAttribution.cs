using Attribution.Data.Audio;
using Attribution.Methods;
using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>Maps of both classes for two-word utterances, and the share of each map's mass on its own word.</summary>
public sealed class TwoWordResult : IDisposable
{
    public TwoWordResult(Tensor firstMaps, Tensor secondMaps, double[] firstOnFirstWord, double[] secondOnSecondWord)
    {
        FirstMaps = firstMaps; SecondMaps = secondMaps; FirstOnFirstWord = firstOnFirstWord; SecondOnSecondWord = secondOnSecondWord;
    }

    /// <summary>Maps explaining the first word's class, shaped like the utterances.</summary>
    public Tensor FirstMaps { get; }
    /// <summary>Maps explaining the second word's class, shaped like the utterances.</summary>
    public Tensor SecondMaps { get; }
    /// <summary>Per utterance: sum |map| before the boundary over sum |map|, for the first class (1 = all on its word).</summary>
    public double[] FirstOnFirstWord { get; }
    /// <summary>Per utterance: sum |map| from the boundary on over sum |map|, for the second class.</summary>
    public double[] SecondOnSecondWord { get; }

    public void Dispose()
    {
        FirstMaps.Dispose();
        SecondMaps.Dispose();
    }
}

/// <summary>
/// The qualitative audio experiment of Gat et al. (2022, Sec. 5.3, Fig. 2), made measurable: two utterances are
/// concatenated ('right' then 'cat'), each class is explained on the same waveform, and the share of attribution
/// mass (sum of |map|) that falls on the half holding that class's word is reported. The paper shows the maps
/// only; 0.5 is what a map blind to position scores, 1 is all mass on the right word.
/// </summary>
public static class TwoWordAttribution
{
    /// <summary>
    /// <paramref name="count"/> utterances [count, 1, 2T]: a clip of <paramref name="firstClass"/> followed by a clip of
    /// <paramref name="secondClass"/>, both drawn (with replacement, seeded) from <paramref name="data"/>.
    /// </summary>
    public static Tensor Pairs(AudioDataset data, int firstClass, int secondClass, int count, long seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        var labels = data.Labels.data<long>().ToArray();
        var first = Enumerable.Range(0, labels.Length).Where(i => labels[i] == firstClass).ToArray();
        var second = Enumerable.Range(0, labels.Length).Where(i => labels[i] == secondClass).ToArray();
        if (first.Length == 0 || second.Length == 0)
            throw new ArgumentException($"TwoWordAttribution.Pairs: the dataset has {first.Length} clips of class {firstClass} and {second.Length} of class {secondClass}; both are needed");
        var rng = new Random((int)(Runtime.Seeds.Derive(seed, $"two-word/{firstClass}/{secondClass}") & 0x7FFF_FFFF));
        var a = new long[count];
        var b = new long[count];
        for (int i = 0; i < count; i++) { a[i] = first[rng.Next(first.Length)]; b[i] = second[rng.Next(second.Length)]; }
        using var scope = NewDisposeScope();
        return cat([data.Waveforms.index_select(0, tensor(a)), data.Waveforms.index_select(0, tensor(b))], 2).MoveToOuterDisposeScope();
    }

    /// <summary>Per map: sum |map| over the last axis before <paramref name="boundary"/> (all other axes summed) over the total; 0.5 for an all-zero map.</summary>
    public static double[] MassBefore(Tensor maps, long boundary)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (maps.dim() < 2 || boundary < 0 || boundary > maps.shape[^1])
            throw new ArgumentException($"MassBefore: maps must be [B, ..., T] with 0 <= boundary <= T; got [{string.Join(", ", maps.shape)}], boundary {boundary}");
        using var scope = NewDisposeScope();
        var a = maps.detach().to(ScalarType.Float64).abs().reshape(maps.shape[0], -1, maps.shape[^1]);
        var before = a.narrow(2, 0, boundary).sum([1L, 2L]);
        var total = a.sum([1L, 2L]);
        var fraction = where(total.gt(0), before / total.clamp_min(double.Epsilon), full_like(total, 0.5));
        return fraction.cpu().data<double>().ToArray();
    }

    /// <summary>
    /// Explains <paramref name="firstClass"/> and <paramref name="secondClass"/> on each utterance of
    /// <paramref name="utterances"/> with one call of <paramref name="method"/>, the batch holding each utterance twice.
    /// Waveforms [B, 1, T] are explained in the [B, 1, 1, T] view (so image-shaped methods such as Grad-CAM work); any
    /// other shape [B, ...] is explained as given (a view such as 25 ms frames [B, T/F, 1, F]) and its elements, in
    /// row-major order, are the utterance's samples. The first word ends at sample <paramref name="boundary"/>. Both
    /// classes of an utterance share its input key, so a sampling method draws the same noise for both.
    /// </summary>
    public static TwoWordResult Explain(nn.Module<Tensor, Tensor> model, IAttributionMethod method, Tensor utterances, long boundary,
                                        long firstClass, long secondClass, ExplainOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(utterances);
        ArgumentNullException.ThrowIfNull(options);
        long samples = utterances.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        if (utterances.dim() < 2 || boundary <= 0 || boundary >= samples)
            throw new ArgumentException($"TwoWordAttribution.Explain: utterances must be [B, ...] with 0 < boundary < the samples of one utterance; got [{string.Join(", ", utterances.shape)}], boundary {boundary}");
        long n = utterances.shape[0];
        var keys = options.InputKeys ?? Enumerable.Range(0, (int)n).Select(i => (long)i).ToArray();
        if (keys.Length != n) throw new ArgumentException($"TwoWordAttribution.Explain: {keys.Length} input keys for {n} utterances");
        using var scope = NewDisposeScope();
        bool waveforms = utterances.dim() == 3 && utterances.shape[1] == 1;
        var x = waveforms ? utterances.unsqueeze(2) : utterances;
        var inputs = cat([x, x], 0);
        var targets = cat([full(n, firstClass, ScalarType.Int64, x.device), full(n, secondClass, ScalarType.Int64, x.device)], 0);
        using var explanation = method.Explain(model, inputs, targets, options with { InputKeys = [.. keys, .. keys] });
        var maps = explanation.Maps.reshape(inputs.shape);
        var first = maps.narrow(0, 0, n).reshape(utterances.shape).detach().clone();
        var second = maps.narrow(0, n, n).reshape(utterances.shape).detach().clone();
        var firstShare = MassBefore(first.reshape(n, 1, samples), boundary);
        var secondShare = MassBefore(second.reshape(n, 1, samples), boundary).Select(f => 1 - f).ToArray();
        return new TwoWordResult(first.MoveToOuterDisposeScope(), second.MoveToOuterDisposeScope(), firstShare, secondShare);
    }

    /// <summary>
    /// Per utterance: whether <paramref name="model"/> ranks both classes among its top two logits on the whole utterance
    /// (shaped as <paramref name="model"/> takes it) — a check that the model hears both words at all.
    /// </summary>
    public static bool[] BothInTopTwo(nn.Module<Tensor, Tensor> model, Tensor utterances, long firstClass, long secondClass, Device device)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(utterances);
        using var scope = NewDisposeScope();
        var (_, top) = Training.Logits(model, utterances, device).topk(2, 1);
        var t = top.data<long>().ToArray();
        return Enumerable.Range(0, (int)utterances.shape[0])
            .Select(i => (t[2 * i] == firstClass || t[2 * i + 1] == firstClass) && (t[2 * i] == secondClass || t[2 * i + 1] == secondClass))
            .ToArray();
    }
}
