using static TorchSharp.torch;

namespace Attribution.Performance;

/// <summary>
/// The least any gradient method can cost: batched forward passes plus the input gradient of the target's logit,
/// on the same number of points and in the same chunks as the method, with nothing drawn and nothing reduced.
/// A method's time over this floor is its overhead (sampling, bookkeeping, reduction); the benchmark reports the ratio.
/// <para>The points are the inputs plus independent Gaussian noise (stdev 0.15 in input units, SmoothGrad's default),
/// not plain copies: a network's CPU cost depends on its inputs' values. On the Fashion-MNIST CNN, passes over 50
/// identical copies of an input ran about 15% faster than over 50 distinct noisy points (max-pooling and ReLU
/// backward branch on the values, and repeated values are predictable), which made every sampling method look
/// 15% slower than it is. Path methods (Integrated Gradients) see scaled copies and may come out below 1.</para>
/// </summary>
public static class GradientFloor
{
    /// <summary>
    /// <paramref name="pointsPerInput"/> points per input [B, ...], laid input after input: each input plus its own
    /// N(0, <paramref name="stdev"/>^2) noise, drawn from a generator seeded with <paramref name="seed"/>.
    /// </summary>
    public static Tensor Points(Tensor inputs, int pointsPerInput, double stdev = 0.15, long seed = 0)
    {
        if (pointsPerInput < 1) throw new ArgumentOutOfRangeException(nameof(pointsPerInput), pointsPerInput, "at least one point per input");
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)seed, inputs.device);
        var copies = inputs.repeat_interleave(pointsPerInput, 0);
        var noise = randn(copies.shape, copies.dtype, copies.device, generator: generator);
        noise.mul_(stdev);
        return copies.add_(noise).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Forward plus input-gradient passes over <paramref name="points"/> [m, ...] with one target per point, in chunks
    /// of <paramref name="batchSize"/>; the last chunk is as short as the method's would be.
    /// </summary>
    public static void Run(nn.Module<Tensor, Tensor> model, Tensor points, Tensor targets, int batchSize)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be at least 1");
        if (targets.shape.Length != 1 || targets.shape[0] != points.shape[0])
            throw new ArgumentException($"one target per point: points [{string.Join(", ", points.shape)}], targets [{string.Join(", ", targets.shape)}]");
        model.eval();
        long total = points.shape[0];
        using var enableGrad = enable_grad();
        for (long start = 0; start < total; start += batchSize)
        {
            using var chunkScope = NewDisposeScope();
            long size = Math.Min(batchSize, total - start);
            var z = points.narrow(0, start, size).detach().requires_grad_(true);
            var picked = model.forward(z).gather(1, targets.narrow(0, start, size).unsqueeze(1));
            autograd.grad([picked.sum()], [z]);
        }
    }
}
