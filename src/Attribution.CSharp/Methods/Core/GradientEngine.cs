using Attribution.Runtime;
using Attribution.Sampling;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// One chunk of evaluated points: which input each point belongs to, its weight, f, grad f and
/// grad log f (the latter only for probability outputs, where grad f = f * grad log f), and the sampler's
/// per-point multipliers (<see cref="SampleSet.Deltas"/>) when it has them. Points are laid input after input, so the
/// chunk's inputs are <see cref="FirstInput"/> .. <see cref="FirstInput"/> + <see cref="InputSpan"/> - 1, known on the host.
/// </summary>
public sealed record PointChunk(Tensor InputIndex, Tensor Targets, Tensor Points, Tensor Weights, Tensor Values, Tensor Gradients, Tensor? LogGradients,
                                Tensor? Deltas = null, Tensor? SampleIndex = null, long FirstInput = 0, int InputSpan = 0);

/// <summary>
/// The batched core every gradient method goes through: expand each input into its sample points,
/// cut the points of all inputs into chunks (<see cref="ExplainOptions.PointsPerChunk"/>), run one forward and
/// one backward pass per chunk, and hand the chunk to a reducer. Batching and memory are solved here once.
/// </summary>
public static class GradientEngine
{
    /// <summary>
    /// f and its input gradient at each point, for one chunk. For probability outputs the gradient of
    /// log p is taken and grad p = p * grad log p is formed, so ratios such as |grad p|^2 / p stay finite
    /// where p underflows.
    /// </summary>
    public static (Tensor Values, Tensor Gradients, Tensor? LogGradients) Evaluate(nn.Module<Tensor, Tensor> model, Tensor points, Tensor targets, OutputFunction output)
    {
        var (values, gradients, logGradients, logits) = EvaluateWithLogits(model, points, targets, output);
        logits.Dispose();
        return (values, gradients, logGradients);
    }

    /// <summary>
    /// <see cref="Evaluate"/>, also returning the logits [m, classes] of the same forward pass (detached), for
    /// methods that need the prediction at each point (e.g. the stop rule of an adversarial walk).
    /// </summary>
    public static (Tensor Values, Tensor Gradients, Tensor? LogGradients, Tensor Logits) EvaluateWithLogits(nn.Module<Tensor, Tensor> model, Tensor points, Tensor targets, OutputFunction output)
    {
        using var scope = NewDisposeScope();
        using var enableGrad = enable_grad();
        var z = points.detach().requires_grad_(true);
        var logits = model.forward(z);
        var picked = targets.unsqueeze(1);
        if (output == OutputFunction.Logit)
        {
            var values = logits.gather(1, picked).squeeze(1);
            var grad = autograd.grad([values.sum()], [z])[0];
            return (values.detach().MoveToOuterDisposeScope(), grad.MoveToOuterDisposeScope(), null, logits.detach().MoveToOuterDisposeScope());
        }
        var logProbability = nn.functional.log_softmax(logits, 1).gather(1, picked).squeeze(1);
        var logGrad = autograd.grad([logProbability.sum()], [z])[0];
        var probability = logProbability.detach().exp();
        var gradient = logGrad * probability.view(Broadcastable(probability, logGrad));
        return (probability.MoveToOuterDisposeScope(), gradient.MoveToOuterDisposeScope(), logGrad.MoveToOuterDisposeScope(), logits.detach().MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Draws <paramref name="samples"/> points per input from <paramref name="sampler"/> and feeds every
    /// evaluated chunk to <paramref name="reduce"/>. Inputs' points are laid end to end; a chunk may hold the
    /// tail of one input and the head of the next. Each input's points are drawn once, by a generator seeded
    /// from (options.Seed, its key).
    /// </summary>
    public static void Sweep(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ISampler sampler, int samples,
                             ExplainOptions options, Action<PointChunk> reduce)
    {
        options.Check();
        if (samples < 1) throw new ArgumentOutOfRangeException(nameof(samples), samples, "at least one sample per input is needed");
        if (targets.shape.Length != 1 || targets.shape[0] != inputs.shape[0])
            throw new ArgumentException($"targets must be a vector with one class per input: inputs {Shape(inputs)}, targets {Shape(targets)}");
        model.eval();
        long count = inputs.shape[0];
        long total = count * samples;
        var keys = options.InputKeys ?? Enumerable.Range(0, (int)count).Select(i => (long)i).ToArray();
        if (keys.Length != count) throw new ArgumentException($"{keys.Length} input keys for {count} inputs");
        var targetList = targets.cpu().data<long>().ToArray();
        long chunk = options.PointsPerChunk(inputs);

        long cachedInput = -1;
        SampleSet? cached = null;
        try
        {
            for (long start = 0; start < total; start += chunk)
            {
                using var scope = NewDisposeScope();
                long end = Math.Min(start + chunk, total);
                var points = new List<Tensor>();
                var weights = new List<Tensor>();
                var owners = new List<Tensor>();
                var deltas = new List<Tensor>();
                var sampleIndex = new List<Tensor>();
                for (long i = start / samples; i <= (end - 1) / samples; i++)
                {
                    if (cachedInput != i)
                    {
                        cached?.Dispose();
                        using var generator = new Generator((ulong)Seeds.Derive(options.Seed, $"input/{keys[i]}"), inputs.device);
                        cached = sampler.Draw(inputs.narrow(0, i, 1), targetList[i], samples, generator);
                        cached.Points.MoveToOuterDisposeScope();
                        cached.Weights.MoveToOuterDisposeScope();
                        cached.Deltas?.MoveToOuterDisposeScope();
                        cachedInput = i;
                    }
                    long from = Math.Max(start - i * samples, 0), to = Math.Min(end - i * samples, samples);
                    points.Add(cached!.Points.narrow(0, from, to - from));
                    weights.Add(cached.Weights.narrow(0, from, to - from));
                    owners.Add(full(to - from, i, ScalarType.Int64, inputs.device));
                    sampleIndex.Add(arange(from, to, ScalarType.Int64, inputs.device));
                    if (cached.Deltas is { } d) deltas.Add(d.narrow(0, from, to - from));
                }
                var owner = cat(owners, 0);
                var z = cat(points, 0);
                var chunkTargets = targets.index_select(0, owner);
                var (values, gradients, logGradients) = Evaluate(model, z, chunkTargets, options.Output);
                if (deltas.Count != 0 && deltas.Count != points.Count)
                    throw new InvalidOperationException($"{sampler.Describe()} gave per-point multipliers for some inputs only");
                var chunkDeltas = deltas.Count == 0 ? null : cat(deltas, 0);
                long firstInput = start / samples;
                reduce(new PointChunk(owner, chunkTargets, z, cat(weights, 0), values, gradients, logGradients, chunkDeltas, cat(sampleIndex, 0),
                                      firstInput, (int)((end - 1) / samples - firstInput + 1)));
            }
        }
        finally
        {
            cached?.Dispose();
        }
    }

    /// <summary>The shape that lets a per-row vector [m] broadcast against a tensor [m, ...].</summary>
    public static long[] Broadcastable(Tensor perRow, Tensor like)
    {
        var shape = Enumerable.Repeat(1L, like.shape.Length).ToArray();
        shape[0] = perRow.shape[0];
        return shape;
    }

    static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}
