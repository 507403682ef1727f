using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// One chunk of evaluated perturbations: which input each row belongs to, which of that input's
/// perturbations it is, the perturbed points, and f at them.
/// </summary>
public sealed record ValueChunk(Tensor InputIndex, Tensor PerturbationIndex, Tensor Points, Tensor Values);

/// <summary>
/// The forward-only counterpart of <see cref="GradientEngine"/>, for perturbation methods (Occlusion,
/// LIME): every input is expanded into its perturbed copies, the copies of all inputs are laid end to end
/// and cut into chunks of <see cref="ExplainOptions.PointsPerChunk"/>, and each chunk takes one forward pass
/// without gradients. A chunk may hold the tail of one input's copies and the head of the next.
/// </summary>
public static class PerturbationEngine
{
    /// <summary>Builds perturbations [first, first + count) of input <c>input</c>: a tensor [count, ...].</summary>
    public delegate Tensor Perturb(long input, long first, long count);

    /// <summary>f (the target's probability or logit, as <paramref name="output"/> says) at <paramref name="points"/>, one forward pass, no gradients.</summary>
    public static Tensor Values(nn.Module<Tensor, Tensor> model, Tensor points, Tensor targets, OutputFunction output)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = model.forward(points);
        var picked = targets.unsqueeze(1);
        var values = output == OutputFunction.Logit
            ? logits.gather(1, picked).squeeze(1)
            : nn.functional.log_softmax(logits, 1).gather(1, picked).squeeze(1).exp();
        return values.MoveToOuterDisposeScope();
    }

    /// <summary>f at the inputs themselves [B], in chunks of <see cref="ExplainOptions.PointsPerChunk"/>.</summary>
    public static Tensor Values(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        options.Check();
        CheckTargets(inputs, targets);
        model.eval();
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>();
        long chunk = options.PointsPerChunk(inputs);
        for (long start = 0; start < inputs.shape[0]; start += chunk)
        {
            long n = Math.Min(chunk, inputs.shape[0] - start);
            parts.Add(Values(model, inputs.narrow(0, start, n), targets.narrow(0, start, n), options.Output));
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Evaluates <paramref name="perturbations"/> copies of every input, built by <paramref name="perturb"/>,
    /// and hands each evaluated chunk to <paramref name="reduce"/>.
    /// </summary>
    public static void Sweep(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, long perturbations,
                             ExplainOptions options, Perturb perturb, Action<ValueChunk> reduce)
    {
        options.Check();
        CheckTargets(inputs, targets);
        if (perturbations < 1) throw new ArgumentOutOfRangeException(nameof(perturbations), perturbations, "at least one perturbation per input is needed");
        model.eval();
        long total = inputs.shape[0] * perturbations;
        long chunk = options.PointsPerChunk(inputs);
        for (long start = 0; start < total; start += chunk)
        {
            using var scope = NewDisposeScope();
            long end = Math.Min(start + chunk, total);
            var points = new List<Tensor>();
            var owners = new List<Tensor>();
            var indices = new List<Tensor>();
            for (long i = start / perturbations; i <= (end - 1) / perturbations; i++)
            {
                long from = Math.Max(start - i * perturbations, 0), to = Math.Min(end - i * perturbations, perturbations);
                points.Add(perturb(i, from, to - from));
                owners.Add(full(to - from, i, ScalarType.Int64, inputs.device));
                indices.Add(arange(from, to, ScalarType.Int64, inputs.device));
            }
            var owner = cat(owners, 0);
            var z = cat(points, 0);
            var values = Values(model, z, targets.index_select(0, owner), options.Output);
            reduce(new ValueChunk(owner, cat(indices, 0), z, values));
        }
    }

    /// <summary>Targets must be a vector with one class per input.</summary>
    public static void CheckTargets(Tensor inputs, Tensor targets)
    {
        if (targets.shape.Length != 1 || targets.shape[0] != inputs.shape[0])
            throw new ArgumentException($"targets must be a vector with one class per input: inputs [{string.Join(", ", inputs.shape)}], targets [{string.Join(", ", targets.shape)}]");
    }

    /// <summary>Inputs must be images [B, C, H, W] for the window and superpixel methods.</summary>
    public static void CheckImages(Tensor inputs, string method)
    {
        if (inputs.shape.Length != 4)
            throw new ArgumentException($"{method} needs image inputs [B, C, H, W], got [{string.Join(", ", inputs.shape)}]");
    }
}
