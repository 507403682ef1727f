using Attribution.Models;
using Attribution.Runtime;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>How the MIP-IN inverses are trained: Adam steps per stage, initial learning rate (decayed exponentially to a thousandth), references per step, seed.</summary>
public sealed record MipInTrainingOptions(int Steps = 200, double LearningRate = 0.05, int BatchSize = 64, long Seed = 0);

/// <summary>
/// The trained layer-wise inverse of MIP-IN (a design from the abstract of Deng et al., arXiv 2104.06629, not the
/// authors' code). Stage l of an <see cref="ILayeredModel"/> maps a_(l-1) to a_l; at an input x its local linear map
/// is L_l = d a_l / d a_(l-1), which carries the forward ReLU and max-pool pattern of x. The inverse of stage l is
/// <code>  g_l(v) = M_(l-1) (.) L_l^T (D_l (.) v),   M_(l-1) = [a_(l-1) != 0] (the forward ReLU gate; none at the input)  </code>
/// with one learned positive scale D_l per unit of the stage's output (<see cref="Scales"/>). g_l is a right inverse of
/// the gated stage exactly when D_l = (L M L^T)^-1 is diagonal, and then g_l(v) is the minimum-norm signal that the
/// gated stage maps back to v (it lies in the row space of L M): the structure gives minimality, the training
/// completeness. Training, stage by stage from the top: the signal that reaches stage l (the predicted class's unit
/// at the top, then the trained inverses above) is inverted and sent forward again through the gated stage, and
/// D_l minimises E ||L_l M g_l(v) - v||^2 / E ||v||^2: what is inverted keeps all the information the stage passes on
/// (the reconstruction proxy of the paper's mutual-information objective).
/// </summary>
public sealed class MipInInverse : IDisposable
{
    public MipInInverse(IReadOnlyList<string> stages, IReadOnlyList<Tensor> scales)
    {
        if (stages.Count != scales.Count) throw new ArgumentException($"mip_in: {stages.Count} stages but {scales.Count} scales");
        Stages = stages; Scales = scales;
    }

    /// <summary>The model's stages, in forward order.</summary>
    public IReadOnlyList<string> Stages { get; }

    /// <summary>D_l per stage, shaped like one sample of that stage's output (the parameters to cache).</summary>
    public IReadOnlyList<Tensor> Scales { get; }

    public void Dispose()
    {
        foreach (var s in Scales) s.Dispose();
    }

    /// <summary>
    /// The source signal at the input for a unit signal on each target's logit: g_1(g_2(..g_L(e_c))) [n, ...].
    /// </summary>
    internal Tensor Invert(ILayeredModel model, Tensor inputs, Tensor targets)
    {
        using var scope = NewDisposeScope();
        var activations = Activations(model, Stages, inputs);
        var top = activations[^1];
        var v = nn.functional.one_hot(targets, top.shape[1]).to(top.dtype);
        for (int l = Stages.Count - 1; l >= 0; l--)
            v = Back(model, Stages[l], activations[l], Scales[l].to(v.device) * v, gate: l > 0, createGraph: false);
        return v.MoveToOuterDisposeScope();
    }

    /// <summary>Trains the inverse of every stage of <paramref name="model"/> on <paramref name="references"/>, top stage first.</summary>
    public static MipInInverse Train(nn.Module<Tensor, Tensor> model, Tensor references, MipInTrainingOptions? options = null)
    {
        options ??= new MipInTrainingOptions();
        if (options.Steps < 1 || options.BatchSize < 1 || options.LearningRate <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), options, "mip_in: steps, batch size and learning rate must be positive");
        var layered = Layered(model);
        model.eval();
        var stages = layered.Stages;
        var scales = new Tensor[stages.Count];
        try
        {
            for (int l = stages.Count - 1; l >= 0; l--)
                scales[l] = TrainStage(layered, stages, scales, l, references, options);
        }
        catch
        {
            foreach (var s in scales) s?.Dispose();
            throw;
        }
        return new MipInInverse(stages, scales);
    }

    static Tensor TrainStage(ILayeredModel model, IReadOnlyList<string> stages, Tensor[] scales, int l, Tensor references, MipInTrainingOptions options)
    {
        using var scope = NewDisposeScope();
        using var generator = Seeds.Generator(options.Seed, $"mip_in/{stages[l]}", CPU);
        long count = references.shape[0];
        long batch = Math.Min(options.BatchSize, count);
        Tensor Batch() => references.index_select(0, randperm(count, generator: generator).narrow(0, 0, batch).to(references.device));

        // Start from the best single scale c = <L g(v), v> / |L g(v)|^2 with D = 1; Adam then learns log(D / c) per unit.
        var (firstInput, firstSignal) = SignalAt(model, stages, scales, l, Batch());
        Tensor baseScale;
        using (var enableGrad = enable_grad())
        {
            var z = Reproduce(model, stages[l], firstInput, Back(model, stages[l], firstInput, firstSignal, gate: l > 0, createGraph: true)).detach();
            baseScale = ((z * firstSignal).sum() / z.square().sum().clamp_min(1e-30)).detach();
        }
        var logScale = new TorchSharp.Modules.Parameter(zeros(firstSignal.shape.Skip(1).ToArray(), firstSignal.dtype, firstSignal.device), requires_grad: true);
        using var adam = optim.Adam([logScale], options.LearningRate);
        // Decay to a thousandth of the rate by the last step: at a constant rate Adam keeps jittering around the optimum by about the rate.
        var schedule = optim.lr_scheduler.ExponentialLR(adam, Math.Pow(1e-3, 1.0 / options.Steps));
        for (int step = 0; step < options.Steps; step++)
        {
            using var stepScope = NewDisposeScope();
            var (stageInput, signal) = step == 0 ? (firstInput, firstSignal) : SignalAt(model, stages, scales, l, Batch());
            using var enableGrad = enable_grad();
            adam.zero_grad();
            var scale = baseScale * logScale.exp();
            var u = Back(model, stages[l], stageInput, scale * signal, gate: l > 0, createGraph: true);
            var loss = (Reproduce(model, stages[l], stageInput, u) - signal).square().sum() / signal.square().sum().clamp_min(1e-30);
            loss.backward();
            adam.step();
            schedule.step();
        }
        using var noGrad = no_grad();
        var result = (baseScale * logScale.exp()).detach().clone().MoveToOuterDisposeScope();
        logScale.Dispose();
        return result;
    }

    /// <summary>The input of stage l and the signal arriving at its output from the trained inverses above, for a batch.</summary>
    static (Tensor StageInput, Tensor Signal) SignalAt(ILayeredModel model, IReadOnlyList<string> stages, Tensor[] scales, int l, Tensor inputs)
    {
        var activations = Activations(model, stages, inputs);
        var top = activations[^1];
        var targets = top.argmax(1);
        var v = nn.functional.one_hot(targets, top.shape[1]).to(top.dtype);
        for (int k = stages.Count - 1; k > l; k--)
            v = Back(model, stages[k], activations[k], scales[k] * v, gate: true, createGraph: false);
        return (activations[l], v);
    }

    /// <summary>a_0 = x, a_(l+1) = stage_l(a_l), without gradients.</summary>
    internal static List<Tensor> Activations(ILayeredModel model, IReadOnlyList<string> stages, Tensor inputs)
    {
        using var noGrad = no_grad();
        var activations = new List<Tensor> { inputs };
        foreach (var stage in stages) activations.Add(model.ForwardStage(stage, activations[^1]));
        return activations;
    }

    /// <summary>M (.) L^T w for the stage at <paramref name="stageInput"/>: one vector-Jacobian product; differentiable in w when training.</summary>
    static Tensor Back(ILayeredModel model, string stage, Tensor stageInput, Tensor w, bool gate, bool createGraph)
    {
        using var enableGrad = enable_grad();
        var a = stageInput.detach().requires_grad_(true);
        var y = model.ForwardStage(stage, a);
        var u = autograd.grad([y], [a], [w], retain_graph: createGraph, create_graph: createGraph)[0];
        if (!createGraph) u = u.detach();
        return gate ? u * stageInput.ne(0).to(u.dtype) : u;
    }

    /// <summary>L u, the gated stage's forward linear map, by the double-VJP trick (L^T w is linear in w; its VJP with u is L u).</summary>
    static Tensor Reproduce(ILayeredModel model, string stage, Tensor stageInput, Tensor u)
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
