namespace Attribution.Methods;

/// <summary>
/// How a method runs, as opposed to what it computes.
/// <para><c>BatchSize</c>: points (samples of all inputs together) per forward/backward pass, Captum's
/// <c>internal_batch_size</c>. <c>Seed</c>: the method's seed; input i draws its noise from a generator seeded
/// from (Seed, InputKeys[i]), so an input's map does not depend on which other inputs share its batch.
/// <c>InputKeys</c>: stable ids of the inputs (e.g. test-set indices); default 0..B-1.</para>
/// </summary>
public sealed record ExplainOptions(OutputFunction Output = OutputFunction.Probability, int BatchSize = 256, long Seed = 0, long[]? InputKeys = null)
{
    /// <summary>
    /// On a CPU, the most input values (points x features) one chunk holds: 2^20, eight 224x224x3 images or 1,337
    /// Fashion-MNIST ones. A CPU pass over a large network is bound by memory once a chunk's activations outgrow the
    /// caches: ResNet-50 at 224x224 took 2.2 s for 16 points in chunks of 2 to 8, 2.9 s in chunks of 16, and minutes
    /// in chunks of 50 (about 100 MB of activations a point). A GPU takes <c>BatchSize</c> points as asked.
    /// </summary>
    public const long CpuChunkValues = 1L << 20;

    /// <summary>Points per chunk for inputs [B, ...]: <c>BatchSize</c>, capped on a CPU by <see cref="CpuChunkValues"/>.</summary>
    public int PointsPerChunk(TorchSharp.torch.Tensor inputs) => (int)RowsPerChunk(BatchSize, inputs, inputs.device);

    /// <summary>
    /// Rows of <paramref name="inputs"/> [B, ...] per pass on <paramref name="device"/>: <paramref name="batchSize"/>,
    /// capped on a CPU at <see cref="CpuChunkValues"/> input values (at least one row).
    /// </summary>
    public static long RowsPerChunk(long batchSize, TorchSharp.torch.Tensor inputs, TorchSharp.torch.Device device)
    {
        long features = Math.Max(1, inputs.NumberOfElements / Math.Max(1, inputs.shape[0]));
        if (device.type != TorchSharp.DeviceType.CPU) return batchSize;
        return Math.Max(1, Math.Min(batchSize, CpuChunkValues / features));
    }

    internal void Check()
    {
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "batch size must be at least 1");
    }

    /// <summary>The stable key of each of <paramref name="count"/> inputs (<c>InputKeys</c>, or 0..count-1).</summary>
    internal long[] Keys(long count)
    {
        var keys = InputKeys ?? Enumerable.Range(0, (int)count).Select(i => (long)i).ToArray();
        if (keys.Length != count) throw new ArgumentException($"{keys.Length} input keys for {count} inputs");
        return keys;
    }

    /// <summary>Input <paramref name="key"/>'s generator, seeded from (Seed, key) as the gradient engine seeds it.</summary>
    internal TorchSharp.torch.Generator GeneratorFor(long key, TorchSharp.torch.Device device) =>
        Runtime.Seeds.Generator(Seed, $"input/{key}", device);
}
