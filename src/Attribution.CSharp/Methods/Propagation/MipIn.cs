using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// MIP-IN, the mutual-information-preserving inverse network (Deng et al., arXiv 2104.06629; a design from the
/// abstract, see <see cref="MipInInverse"/>): the attribution of x for class c is the source signal at the input,
/// s = t * g_1(..g_L(e_c)), the target's logit unit inverted down through the trained, ReLU-gated layer inverses
/// (each followed by its per-input projection that keeps the target logit) and scaled by the target's input
/// contribution t = grad f_c(x) . x (for a ReLU/max-pool network the part of the logit that is not bias:
/// f_c(x) = grad f_c(x) . x + bias path).
/// <para>Diagnostics per input: <c>target_contribution</c> t; <c>reproduced</c> = grad f_c(x) . s, the logit the signal
/// gives when sent forward through the network gated as for x; <c>completeness_error</c> = |reproduced - t| / |t|;
/// <c>minimality_ratio</c> = |s| |grad f_c(x)| / |grad f_c(x) . s| &gt;= 1, the signal's norm over the smallest norm of
/// any signal giving the same logit (1: nothing in s is wasted on directions the logit ignores);
/// <c>uncorrected_completeness_error</c> = |grad f_c(x) . g_1(..g_L(e_c)) - 1| for the trained inverses without the
/// projections: how far the inverse network alone is from complete.</para>
/// Needs an <see cref="Models.ILayeredModel"/> with <c>ForwardStage</c>; explains logits whatever the output option.
/// </summary>
public sealed class MipIn : IAttributionMethod
{
    public MipIn(MipInInverse inverse) => Inverse = inverse;

    /// <summary>The trained inverses (owned by the caller, who may cache their <see cref="MipInInverse.Mixings"/>).</summary>
    public MipInInverse Inverse { get; }

    public string Describe() => $"mip_in: learned ReLU-gated inverses of {Inverse.Stages.Count} stages, projected to keep the target logit";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        options.Check();
        var layered = MipInInverse.Layered(model);
        model.eval();
        using var scope = NewDisposeScope();
        long count = inputs.shape[0];
        var maps = new List<Tensor>();
        var contributions = new List<Tensor>();
        var reproduced = new List<Tensor>();
        var ratios = new List<Tensor>();
        var uncorrected = new List<Tensor>();
        long chunk = options.PointsPerChunk(inputs);
        for (long start = 0; start < count; start += chunk)
        {
            using var chunkScope = NewDisposeScope();
            long n = Math.Min(chunk, count - start);
            var x = inputs.narrow(0, start, n);
            var t = targets.narrow(0, start, n);
            var unit = Inverse.Invert(layered, x, t);
            var (_, gradient, _) = GradientEngine.Evaluate(model, x, t, OutputFunction.Logit);
            var contribution = TaylorDerivatives.RowDot(gradient, x);
            var signal = unit * contribution.view(GradientEngine.Broadcastable(contribution, unit));
            var back = TaylorDerivatives.RowDot(gradient, signal);
            var ratio = signal.flatten(1).norm(1) * gradient.flatten(1).norm(1) / back.abs();
            var raw = TaylorDerivatives.RowDot(gradient, Inverse.InvertUncorrected(layered, x, t));
            uncorrected.Add((raw - 1).abs().MoveToOuterDisposeScope());
            maps.Add(signal.MoveToOuterDisposeScope());
            contributions.Add(contribution.MoveToOuterDisposeScope());
            reproduced.Add(back.MoveToOuterDisposeScope());
            ratios.Add(ratio.MoveToOuterDisposeScope());
        }
        var total = cat(contributions, 0);
        var again = cat(reproduced, 0);
        var diagnostics = new Dictionary<string, Tensor>
        {
            ["target_contribution"] = total.MoveToOuterDisposeScope(),
            ["reproduced"] = again.MoveToOuterDisposeScope(),
            ["completeness_error"] = ((again - total).abs() / total.abs()).MoveToOuterDisposeScope(),
            ["minimality_ratio"] = cat(ratios, 0).MoveToOuterDisposeScope(),
            ["uncorrected_completeness_error"] = cat(uncorrected, 0).MoveToOuterDisposeScope(),
        };
        return new Explanation(cat(maps, 0).MoveToOuterDisposeScope(), diagnostics);
    }
}
