using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Adversarial Gradient Integration, AGI (Pan, Li, Zhu, IJCAI 2021, Algorithm 1). For the explained class t
/// and each of k false classes j, a walk starts at z = x and, for at most <c>maxIterations</c> iterations:
/// <code>
///     if argmax_c logits(z) = j: stop                          (the attack reached class j)
///     delta = epsilon sign(grad f_j(z) / |grad f_j(z)|)         (the paper's normalised gradient of the false class;
///                                                                the norm does not change the sign)
///     A += -grad f_t(z) (.) delta                               (the gradient of the explained class along the path)
///     z = z + delta
/// </code>
/// and the map is the sum of A over the k walks. Each walk is a left Riemann sum of the path integral of
/// grad f_t from the adversarial end point back to x, so a walk's A sums to about f_t(x) - f_t(z_end).
/// <para>Defaults: <c>falseClasses</c> k = 20 and <c>epsilon</c> 0.05 (the AGI setting the NeFLAG paper reports
/// using, Li et al. 2023 Sec. 5.1), <c>maxIterations</c> 20 (the reference code's <c>max_iter</c>, NeFLAG's
/// App. A.4 "AGI: m = 20").</para>
/// <para>Where the paper is silent, or the reference code differs, we choose:</para>
/// <list type="bullet">
/// <item>False classes: k classes drawn uniformly without replacement from the classes other than t, from the input's
/// own generator (seeded from the method seed and the input key); all C - 1 of them when k &gt;= C - 1. The reference
/// code draws k ids from all classes and skips the explained one (so it may use k - 1).</item>
/// <item>f is the explained function of the options (probability by default, as the reference code's softmax) for
/// both t and j. For probabilities the direction is taken from grad log p_j, which has the sign of grad p_j and does
/// not underflow.</item>
/// <item>The walk moves from the current point z (the paper's iterative attack); the reference code's <c>fgsm_step</c>
/// is passed the original image at every iteration, so its "path" never leaves the epsilon-box around x.</item>
/// <item>No clamping to [0, 1] (the reference clamps to the image range); this toolkit's other methods do not clamp.</item>
/// <item>Sum, not mean, over the false classes, as the reference code (its <c>/ topk</c> is commented out).</item>
/// </list>
/// <para>Batching: the k walks of every input are laid end to end; a pass evaluates at most
/// <see cref="ExplainOptions.BatchSize"/> points, two per walk (the point once for f_t and once for f_j, so that one
/// forward and one backward pass give both gradients); each iteration is one pass of the chunk's unfinished walks.</para>
/// <para>Diagnostics per input: <c>mean_steps</c> (moves per walk) and <c>attack_success_fraction</c> (walks that
/// reached their false class within <c>maxIterations</c>).</para>
/// </summary>
public sealed class AdversarialGradientIntegration : IAttributionMethod
{
    public AdversarialGradientIntegration(int falseClasses = 20, double epsilon = 0.05, int maxIterations = 20)
    {
        if (falseClasses < 1) throw new ArgumentOutOfRangeException(nameof(falseClasses), falseClasses, "agi: at least one false class is needed");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "agi: the step size must be positive");
        if (maxIterations < 1) throw new ArgumentOutOfRangeException(nameof(maxIterations), maxIterations, "agi: at least one iteration is needed");
        FalseClasses = falseClasses; Epsilon = epsilon; MaxIterations = maxIterations;
    }

    public int FalseClasses { get; }
    public double Epsilon { get; }
    public int MaxIterations { get; }

    public string Describe() => $"agi: {FalseClasses} false classes, step {Epsilon}, at most {MaxIterations} iterations each";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        options.Check();
        PerturbationEngine.CheckTargets(inputs, targets);
        model.eval();
        using var scope = NewDisposeScope();
        long count = inputs.shape[0];
        var keys = options.Keys(count);
        long classes;
        using (no_grad()) classes = model.forward(inputs.narrow(0, 0, 1)).shape[1];
        if (classes < 2) throw new ArgumentException($"agi needs at least two classes; the model has {classes}");

        var (owners, falseClasses) = Walks(inputs.device, targets, keys, classes, options);
        long walks = owners.Length;
        var map = zeros(inputs.shape, ScalarType.Float64, inputs.device);
        var steps = zeros(count, ScalarType.Float64, inputs.device);
        var success = zeros(count, ScalarType.Float64, inputs.device);
        long perPass = Math.Max(1, options.PointsPerChunk(inputs) / 2);
        for (long start = 0; start < walks; start += perPass)
        {
            using var chunkScope = NewDisposeScope();
            long w = Math.Min(perPass, walks - start);
            var owner = tensor(owners.AsSpan((int)start, (int)w).ToArray(), device: inputs.device);
            var j = tensor(falseClasses.AsSpan((int)start, (int)w).ToArray(), device: inputs.device);
            var t = targets.index_select(0, owner);
            var z = inputs.index_select(0, owner);
            var active = arange(w, ScalarType.Int64, inputs.device);
            for (int iteration = 0; iteration < MaxIterations && active.shape[0] > 0; iteration++)
            {
                using var pass = NewDisposeScope();
                long a = active.shape[0];
                var za = z.index_select(0, active);
                var ja = j.index_select(0, active);
                var oa = owner.index_select(0, active);
                var (_, gradients, logGradients, logits) = GradientEngine.EvaluateWithLogits(
                    model, cat([za, za], 0), cat([t.index_select(0, active), ja], 0), options.Output);
                var reached = logits.narrow(0, 0, a).argmax(1).eq(ja);
                var go = reached.logical_not();
                success.index_add_(0, oa, reached.to(ScalarType.Float64), 1.0);
                var gTarget = gradients.narrow(0, 0, a);
                var direction = (logGradients ?? gradients).narrow(0, a, a).sign();
                var mask = go.to(za.dtype).view(GradientEngine.Broadcastable(go, za));
                var delta = direction * mask * Epsilon;
                map.index_add_(0, oa, (-(gTarget * delta)).to(ScalarType.Float64), 1.0);
                steps.index_add_(0, oa, go.to(ScalarType.Float64), 1.0);
                z.index_copy_(0, active, za + delta);
                active = active.index_select(0, go.nonzero().squeeze(1)).MoveToOuterDisposeScope();
            }
        }
        var diagnostics = new Dictionary<string, Tensor>
        {
            ["mean_steps"] = (steps / PerInput(owners, count, inputs.device)).MoveToOuterDisposeScope(),
            ["attack_success_fraction"] = (success / PerInput(owners, count, inputs.device)).MoveToOuterDisposeScope(),
        };
        return new Explanation(map.to(inputs.dtype).MoveToOuterDisposeScope(), diagnostics);
    }

    /// <summary>The walks (owner input, false class), inputs in order; each input's false classes drawn from its own generator.</summary>
    (long[] Owners, long[] Classes) Walks(Device device, Tensor targets, long[] keys, long classes, ExplainOptions options)
    {
        var targetList = targets.cpu().data<long>().ToArray();
        var owners = new List<long>();
        var chosen = new List<long>();
        for (int i = 0; i < targetList.Length; i++)
        {
            long y = targetList[i];
            if (y < 0 || y >= classes) throw new ArgumentException($"target {y} of input {i} is not one of the model's {classes} classes");
            IEnumerable<long> others;
            if (FalseClasses >= classes - 1) others = Enumerable.Range(0, (int)(classes - 1)).Select(c => (long)c);
            else
            {
                using var scope = NewDisposeScope();
                using var generator = options.GeneratorFor(keys[i], device);
                others = randperm(classes - 1, generator: generator, device: device).narrow(0, 0, FalseClasses).cpu().data<long>().ToArray();
            }
            foreach (var c in others)
            {
                owners.Add(i);
                chosen.Add(c >= y ? c + 1 : c);   // skip the explained class
            }
        }
        return (owners.ToArray(), chosen.ToArray());
    }

    static Tensor PerInput(long[] owners, long count, Device device)
    {
        var n = new double[count];
        foreach (var o in owners) n[o]++;
        return tensor(n, device: device);
    }
}
