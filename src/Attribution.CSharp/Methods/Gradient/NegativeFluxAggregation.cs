using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Negative Flux Aggregation, NeFLAG (Li, Pan, Li, Qiang, Zhu, IJCAI 2023, Algorithm 1). For each of
/// <c>n</c> walks: draw x~ uniformly on the L2 epsilon-sphere around x; then for at most <c>m</c> steps take
/// F(x~) = grad f(x~) and stop if f(x~) &lt; f(x) (a negative flux, Eq. 6), else move by the sign
/// recurrence x~ &lt;- x - epsilon sign(F(x~)) (line 5). The map is the sum over the walks of
/// F(x~) (.) (x - x~) at the final x~ (line 7).
/// <para>Defaults: <c>samples</c> n = 20 (the paper's qualitative setting, its NeFLAG-20; Tables 1-2 also use 1 and 10),
/// <c>epsilon</c> 0.1 (input units; the paper's images are in [0, 1]), <c>maxSteps</c> m = 20.</para>
/// <para>Reading of Algorithm 1: line 4 (random start) is the initialisation of each walk, not redrawn at every
/// step, because the text calls line 5 a recurrence; the random start counts as step 1 (one forward and backward
/// pass), so a walk whose start already has f(x~) &lt; f(x) uses one step. The stop rule is not printed in
/// Algorithm 1; it is the paper's criterion for a negative flux (Sec. 4.2) and is what makes the "average actual
/// number of steps" (1.7 to 1.9 at epsilon 0.1, App. A.4) smaller than m. A walk that reaches m steps without
/// a negative flux is accumulated anyway, as line 7 does. Every step is one gradient evaluation of all active
/// walks (of all inputs) together; finished walks are replaced by new ones, so every pass is a full chunk.</para>
/// <para>Diagnostics per input: <c>mean_steps</c> (gradient evaluations per walk) and
/// <c>negative_flux_fraction</c> (walks that ended with f(x~) &lt; f(x)).</para>
/// </summary>
public sealed class NegativeFluxAggregation : IAttributionMethod
{
    public NegativeFluxAggregation(int samples = 20, double epsilon = 0.1, int maxSteps = 20)
    {
        if (samples < 1) throw new ArgumentOutOfRangeException(nameof(samples), samples, "neflag: at least one walk (negative-flux sample) is needed");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "neflag: the sphere radius must be positive");
        if (maxSteps < 1) throw new ArgumentOutOfRangeException(nameof(maxSteps), maxSteps, "neflag: at least one step is needed");
        Samples = samples; Epsilon = epsilon; MaxSteps = maxSteps;
    }

    public int Samples { get; }
    public double Epsilon { get; }
    public int MaxSteps { get; }

    public string Describe() => $"neflag: {Samples} negative-flux walks on the {Epsilon}-sphere, at most {MaxSteps} steps each";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        options.Check();
        PerturbationEngine.CheckTargets(inputs, targets);
        model.eval();
        using var scope = NewDisposeScope();
        long count = inputs.shape[0];
        var keys = options.Keys(count);
        var fx = PerturbationEngine.Values(model, inputs, targets, options);
        var map = zeros(inputs.shape, ScalarType.Float64, inputs.device);
        var steps = zeros(count, ScalarType.Float64, inputs.device);
        var negative = zeros(count, ScalarType.Float64, inputs.device);

        var pool = new Walks(null, null, null);   // active walks: points, owners, steps taken
        Tensor? starts = null;
        long startsOf = -1, next = 0, total = count * Samples;
        long chunk = options.PointsPerChunk(inputs);
        try
        {
            while (next < total || pool.Points is not null)
            {
                using var iteration = NewDisposeScope();
                var points = new List<Tensor>();
                var owners = new List<Tensor>();
                var taken = new List<Tensor>();
                if (pool.Points is not null) { points.Add(pool.Points); owners.Add(pool.Owners!); taken.Add(pool.Steps!); }
                long room = chunk - (pool.Points?.shape[0] ?? 0);
                while (room > 0 && next < total)
                {
                    long i = next / Samples, from = next % Samples, take = Math.Min(room, Samples - from);
                    if (startsOf != i)
                    {
                        starts?.Dispose();
                        starts = Starts(inputs.narrow(0, i, 1), options, keys[i]).DetachFromDisposeScope();
                        startsOf = i;
                    }
                    points.Add(starts!.narrow(0, from, take));
                    owners.Add(full(take, i, ScalarType.Int64, inputs.device));
                    taken.Add(zeros(take, ScalarType.Int64, inputs.device));
                    next += take; room -= take;
                }
                var z = cat(points, 0);
                var owner = cat(owners, 0);
                var used = cat(taken, 0) + 1;
                pool.Dispose();

                var (values, gradients, _) = GradientEngine.Evaluate(model, z, targets.index_select(0, owner), options.Output);
                var centres = inputs.index_select(0, owner);
                var found = values.lt(fx.index_select(0, owner));
                var done = found.logical_or(used.ge(MaxSteps));

                var finished = done.nonzero().squeeze(1);
                if (finished.shape[0] > 0)
                {
                    var o = owner.index_select(0, finished);
                    // line 7: NeFLAG += F(x~) (.) (x - x~)
                    var flux = gradients.index_select(0, finished) * (centres.index_select(0, finished) - z.index_select(0, finished));
                    map.index_add_(0, o, flux.to(ScalarType.Float64), 1.0);
                    steps.index_add_(0, o, used.index_select(0, finished).to(ScalarType.Float64), 1.0);
                    negative.index_add_(0, o, found.index_select(0, finished).to(ScalarType.Float64), 1.0);
                }
                var active = done.logical_not().nonzero().squeeze(1);
                pool = active.shape[0] == 0
                    ? new Walks(null, null, null)
                    // line 5: x~ <- x - epsilon sign(F(x~) / |F(x~)|)
                    : new Walks((centres.index_select(0, active) - gradients.index_select(0, active).sign() * Epsilon).DetachFromDisposeScope(),
                                owner.index_select(0, active).DetachFromDisposeScope(),
                                used.index_select(0, active).DetachFromDisposeScope());
            }
        }
        finally
        {
            starts?.Dispose();
            pool.Dispose();
        }
        var diagnostics = new Dictionary<string, Tensor>
        {
            ["mean_steps"] = (steps / Samples).MoveToOuterDisposeScope(),
            ["negative_flux_fraction"] = (negative / Samples).MoveToOuterDisposeScope(),
        };
        return new Explanation(map.to(inputs.dtype).MoveToOuterDisposeScope(), diagnostics);
    }

    /// <summary>The n random starts of one input, x + epsilon u with u uniform on the unit sphere, from the input's own generator.</summary>
    Tensor Starts(Tensor input, ExplainOptions options, long key)
    {
        using var scope = NewDisposeScope();
        using var generator = options.GeneratorFor(key, input.device);
        var shape = input.shape.ToArray();
        shape[0] = Samples;
        var u = randn(shape, input.dtype, input.device, generator: generator);
        var norms = u.flatten(1).square().sum(1).sqrt();
        norms = norms.view(GradientEngine.Broadcastable(norms, u));
        return (input + u / norms * Epsilon).MoveToOuterDisposeScope();
    }

    /// <summary>The walks still running, owned outside any dispose scope (they live from one pass to the next).</summary>
    sealed record Walks(Tensor? Points, Tensor? Owners, Tensor? Steps) : IDisposable
    {
        public void Dispose() { Points?.Dispose(); Owners?.Dispose(); Steps?.Dispose(); }
    }
}
