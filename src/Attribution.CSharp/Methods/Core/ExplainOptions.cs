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
