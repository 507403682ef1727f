using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// The features a perturbation metric ranks, removes and reveals, for a block of inputs: pixels of images, elements of
/// any tensor, tokens of padded texts, or a space of the user's own (columns of a table, frames of a waveform).
/// Insertion/deletion, Sensitivity-N and negative perturbation are written once over this interface, so a new modality
/// needs a space, not a copy of each metric.
/// <para>Every input of a block has the same <see cref="Slots"/>, so that a block's masks are one [B, K, D] tensor and
/// the metrics stay batched; inputs of different sizes mark their unused slots as not <see cref="Real"/> (a text's
/// padding). A space decides what "at the substrate" means for a slot (black or blurred pixels, &lt;unk&gt;, a mask
/// value) and never changes a slot that is not real.</para>
/// </summary>
public interface IFeatureSpace
{
    /// <summary>Inputs in the block (B).</summary>
    long Count { get; }

    /// <summary>Feature slots per input (D): the width of every score row and mask.</summary>
    long Slots { get; }

    /// <summary>
    /// [B, D] bool on the CPU: the slots that hold a real feature. Null when every slot of every input is real: the
    /// metrics then share one mask across the block (and keep the arithmetic they had for images).
    /// </summary>
    Tensor? Real { get; }

    /// <summary>What replaces a feature, as reports name it (<c>black</c>, <c>blur(20)</c>, <c>unk</c>).</summary>
    string Substrate { get; }

    /// <summary>
    /// One score per slot, [B, D] on the CPU, from an attribution of the block's inputs (pixels: the sum over channels;
    /// tokens: the token scores; elements: the map flattened). Throws <see cref="ArgumentException"/> for a map of
    /// another shape.
    /// </summary>
    Tensor Scores(Tensor maps);

    /// <summary>The block's model inputs as they are, [B, ...] on the CPU (the reference of a metric).</summary>
    Tensor Inputs { get; }

    /// <summary>
    /// Model inputs [B * K, ...] (CPU, a fresh tensor) from <paramref name="atSubstrate"/> [B, K, D] or [1, K, D] (one set
    /// of K masks for every input): copy k of input i has the slots where the mask is true at the substrate, the others
    /// as in the input. Slots that are not real stay as they are whatever the mask says.
    /// </summary>
    Tensor Perturb(Tensor atSubstrate);

    /// <summary>The model's logits [N, classes] (CPU) of model inputs [N, ...], <paramref name="batchSize"/> at a time, without gradients.</summary>
    Tensor Logits(Tensor modelInputs, int batchSize);

    /// <summary>
    /// The inputs at <paramref name="rows"/> (indices into this block, in that order) as a space of their own. The
    /// metrics take their chunks this way: a substrate computed from the inputs (a blur) is then computed per chunk,
    /// so a set read a block at a time sees the same chunks, and the same substrate, as the whole set; and
    /// Sensitivity-N leaves out of a chunk the inputs a size skips, so they do not change which inputs share a forward pass.
    /// </summary>
    IFeatureSpace Rows(long[] rows);
}

/// <summary>What the metrics ask of any <see cref="IFeatureSpace"/> beyond its members.</summary>
public static class FeatureSpace
{
    /// <summary>Real slots per input, [B] int64 on the CPU (D for every input of a space without padding).</summary>
    public static Tensor RealCounts(IFeatureSpace space)
    {
        ArgumentNullException.ThrowIfNull(space);
        return space.Real is { } real ? real.sum(1).to(ScalarType.Int64) : full(space.Count, space.Slots, ScalarType.Int64);
    }

    /// <summary>Throws unless <paramref name="targets"/> is [B] for the space's B inputs.</summary>
    public static void CheckTargets(IFeatureSpace space, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.dim() != 1 || targets.shape[0] != space.Count)
            throw new ArgumentException($"targets must be [{space.Count}]; got [{string.Join(", ", targets.shape)}]", nameof(targets));
    }

    /// <summary>Indices start .. start + length - 1: a contiguous chunk for <see cref="IFeatureSpace.Rows"/>.</summary>
    public static long[] Range(long start, long length)
    {
        var rows = new long[length];
        for (long i = 0; i < length; i++) rows[i] = start + i;
        return rows;
    }

    /// <summary>
    /// Rows <paramref name="rows"/> of <paramref name="x"/> along dimension 0: a view when they are a contiguous run (as
    /// a chunk is), a copy otherwise. For implementers of <see cref="IFeatureSpace.Rows"/>.
    /// </summary>
    public static Tensor Take(Tensor x, long[] rows)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rows);
        bool run = rows.Length > 0 && rows[0] >= 0 && rows[^1] < x.shape[0];
        for (int i = 1; run && i < rows.Length; i++) run = rows[i] == rows[i - 1] + 1;
        if (run) return x.narrow(0, rows[0], rows.Length);
        using var index = tensor(rows);
        return x.index_select(0, index);
    }

    /// <summary>Throws unless <paramref name="mask"/> is a [B, K, D] or [1, K, D] bool mask for <paramref name="space"/>.</summary>
    public static void CheckMask(IFeatureSpace space, Tensor mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        if (mask.dtype != ScalarType.Bool || mask.dim() != 3 || (mask.shape[0] != space.Count && mask.shape[0] != 1) || mask.shape[2] != space.Slots)
            throw new ArgumentException($"a mask must be bool [{space.Count} or 1, K, {space.Slots}]; got {mask.dtype} [{string.Join(", ", mask.shape)}]", nameof(mask));
    }
}
