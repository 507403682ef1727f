using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The layer-wise inverse network of MIP-IN (designed from the abstract of Deng et al., arXiv 2104.06629; not the
/// authors' code). Stage l of an <see cref="ILayeredModel"/> maps a_(l-1) to a_l; at an input x its gated local linear
/// map is A_l = d a_l / d a_(l-1) restricted to the active units M_(l-1) = [a_(l-1) != 0] of its input (A_l carries the
/// forward ReLU and max-pool pattern of x; there is no gate at the image). The inverse of stage l is
/// <code>  g_l(v) = A_l^T D_l v = M_(l-1) (.) L_l^T (D_l v)  </code>
/// with a learned mixing D_l on the stage's output space (<see cref="Mixings"/>): a full k x k matrix when the output is
/// a vector of k units (dense stages), a C x C channel mixing applied at every position when it is a [C, H, W] map
/// (conv and pool stages: L^T D is then a transposed convolution whose filters are learned combinations of the forward
/// ones, and max-pooling is inverted through its switches). Every g_l(v) lies in the row space of A_l, so it is the
/// minimum-norm signal among all signals that the gated stage maps onto the same A_l g_l(v): minimality is built in.
/// D_l = (A A^T)^-1 would be an exact right inverse, but A depends on the input and D_l cannot; D_l is trained
/// (<see cref="MipInTraining"/>) to be the best one on reference inputs.
/// <para>Completeness per input. The gated network's target logit is linear in a signal at layer l, with weights
/// w_l = d f_c / d a_l (gated); MIP-IN's signals must keep what the stage passes on to the output, so after each
/// stage the inverted signal is projected onto {u : w_(l-1) . u = w_l . v}:
/// <code>  s_(l-1) = g_l(v) + beta w_(l-1),   beta = (w_l . v - w_(l-1) . g_l(v)) / |w_(l-1)|^2  </code>
/// the smallest change (in norm) of the network's proposal that restores the target logit; w_(l-1) = A_l^T w_l is in
/// the row space of A_l, so the corrected signal stays minimum-norm for its image. This projection is a closed-form,
/// per-input step: an input-independent D_l with the ReLU gate alone cannot make the logit come out right for every
/// input of an ordinary network (it reached 83% error with diagonal D, see docs/methods.md).
/// <see cref="InvertUncorrected"/> gives the network's own signal, so the size of the correction can be reported.</para>
/// </summary>
public sealed class MipInInverse : IDisposable
{
    public MipInInverse(IReadOnlyList<string> stages, IReadOnlyList<Tensor> mixings)
    {
        if (stages.Count != mixings.Count) throw new ArgumentException($"mip_in: {stages.Count} stages but {mixings.Count} mixings");
        Stages = stages; Mixings = mixings;
    }

    /// <summary>The model's stages, in forward order.</summary>
    public IReadOnlyList<string> Stages { get; }

    /// <summary>D_l per stage: [k, k] for a stage with k output units, [C, C] for a stage with [C, H, W] outputs (the parameters to cache).</summary>
    public IReadOnlyList<Tensor> Mixings { get; }

    public void Dispose()
    {
        foreach (var d in Mixings) d.Dispose();
    }

    /// <summary>Trains the inverse of every stage of <paramref name="model"/> on <paramref name="references"/>, top stage first (see <see cref="MipInTraining"/>).</summary>
    public static MipInInverse Train(nn.Module<Tensor, Tensor> model, Tensor references, MipInTrainingOptions? options = null) =>
        MipInTraining.Train(model, references, options ?? new MipInTrainingOptions());

    /// <summary>The corrected source signal at the input for a unit signal on each target's logit [n, ...]: w_0 . s = 1 up to rounding.</summary>
    internal Tensor Invert(ILayeredModel model, Tensor inputs, Tensor targets) => Descend(model, inputs, targets, correct: true);

    /// <summary>g_1(g_2(..g_L(e_c))) without the per-input projections: what the trained network alone gives.</summary>
    internal Tensor InvertUncorrected(ILayeredModel model, Tensor inputs, Tensor targets) => Descend(model, inputs, targets, correct: false);

    Tensor Descend(ILayeredModel model, Tensor inputs, Tensor targets, bool correct)
    {
        using var scope = NewDisposeScope();
        var activations = Activations(model, Stages, inputs);
        var seed = nn.functional.one_hot(targets, activations[^1].shape[1]).to(activations[^1].dtype);
        return Descend(model, Stages, Mixings, activations, seed, 0, correct).Signal.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The signal at a_stop: the seed at the logits inverted through stages L-1 .. stop (indices into
    /// <paramref name="stages"/>), projected after every stage when <paramref name="correct"/>; with the target logit's
    /// gated gradient w at a_stop (only when correcting; the seed otherwise).
    /// </summary>
    internal static (Tensor Signal, Tensor Gradient) Descend(ILayeredModel model, IReadOnlyList<string> stages, IReadOnlyList<Tensor> mixings,
                                   IReadOnlyList<Tensor> activations, Tensor seed, int stop, bool correct)
    {
        var v = seed;
        var w = seed;
        for (int l = stages.Count - 1; l >= stop; l--)
        {
            var u = Back(model, stages[l], activations[l], Mix(mixings[l].to(v.device), v), gate: l > 0, createGraph: false);
            if (!correct) { v = u; continue; }
            var below = Back(model, stages[l], activations[l], w, gate: l > 0, createGraph: false);
            v = Project(u, below, TaylorDerivatives.RowDot(w, v));
            w = below;
        }
        return (v, w);
    }

    /// <summary>u + beta w with w . (u + beta w) = target per row; rows whose w is zero (the logit ignores this layer) keep u.</summary>
    static Tensor Project(Tensor u, Tensor w, Tensor target)
    {
        var norm = TaylorDerivatives.RowDot(w, w);
        var beta = where(norm > 0, (target - TaylorDerivatives.RowDot(w, u)) / norm.clamp_min(1e-300), zeros_like(norm));
        return u + beta.view(GradientEngine.Broadcastable(beta, u)) * w;
    }

    /// <summary>D v over the unit axis (dim 1): a matrix product for [n, k], a channel mixing at every position for [n, C, ...].</summary>
    internal static Tensor Mix(Tensor d, Tensor v) =>
        v.dim() == 2 ? v.matmul(d.t()) : v.movedim([1L], [-1L]).matmul(d.t()).movedim([-1L], [1L]);

    /// <summary>a_0 = x, a_(l+1) = stage_l(a_l), without gradients.</summary>
    internal static List<Tensor> Activations(ILayeredModel model, IReadOnlyList<string> stages, Tensor inputs)
    {
        using var noGrad = no_grad();
        var activations = new List<Tensor> { inputs };
        foreach (var stage in stages) activations.Add(model.ForwardStage(stage, activations[^1]));
        return activations;
    }

    /// <summary>M (.) L^T w for the stage at <paramref name="stageInput"/>: one vector-Jacobian product; differentiable in w when training.</summary>
    internal static Tensor Back(ILayeredModel model, string stage, Tensor stageInput, Tensor w, bool gate, bool createGraph)
    {
        using var enableGrad = enable_grad();
        var a = stageInput.detach().requires_grad_(true);
        var y = model.ForwardStage(stage, a);
        var u = autograd.grad([y], [a], [w], retain_graph: createGraph, create_graph: createGraph)[0];
        if (!createGraph) u = u.detach();
        return gate ? u * stageInput.ne(0).to(u.dtype) : u;
    }

    /// <summary>L u, the stage's forward linear map at <paramref name="stageInput"/>, by the double-VJP trick (L^T w is linear in w; its VJP with u is L u).</summary>
    internal static Tensor Reproduce(ILayeredModel model, string stage, Tensor stageInput, Tensor u)
    {
        var a = stageInput.detach().requires_grad_(true);
        var y = model.ForwardStage(stage, a);
        var w = zeros_like(y).requires_grad_(true);
        // retain_graph: the training loss differentiates through both passes again (TorchSharp does not tie it to create_graph).
        var transposed = autograd.grad([y], [a], [w], retain_graph: true, create_graph: true)[0];
        return autograd.grad([transposed], [w], [u], retain_graph: true, create_graph: true)[0];
    }

    internal static ILayeredModel Layered(nn.Module<Tensor, Tensor> model) =>
        model as ILayeredModel ?? throw new ArgumentException($"mip_in needs a model that can be cut stage by stage (Attribution.Models.ILayeredModel with ForwardStage); {model.GetType().Name} is not one");
}
