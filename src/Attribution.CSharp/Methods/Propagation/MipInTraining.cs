using Attribution.Models;
using Attribution.Runtime;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>How the MIP-IN inverses are trained: Adam steps per stage, initial learning rate (decayed exponentially to a thousandth), references per step, seed.</summary>
public sealed record MipInTrainingOptions(int Steps = 200, double LearningRate = 0.05, int BatchSize = 64, long Seed = 0);

/// <summary>
/// Trains the mixings D_l of <see cref="MipInInverse"/> layer by layer from the top. For stage l the signal v that
/// reaches its output (the predicted class's logit unit e_c at the top; below, e_c inverted and projected through the
/// already trained stages above, exactly as at explanation time) is inverted by g_l and sent forward again through
/// the gated stage, and D_l minimises
/// <code>  J(D_l) = sum |A_l g_l(v) - v|^2 / sum |v|^2  +  sum (w_l . (A_l g_l(v) - v))^2 / sum (w_l . v)^2,   g_l(v) = A_l^T D_l v  </code>
/// (sums over the batch; w_l the target logit's gated gradient at a_l). The first term keeps the whole layer signal
/// (the proxy for preserving mutual information: what is inverted keeps everything the stage passes on); the second
/// keeps the target logit's share, so the per-input projection has less to correct. D_l = c (diag(exp s) + E), E
/// off-diagonal: c is the best single scale for D = I (closed form), Adam learns s (scale-free, as the diagonal may
/// need to move by factors) and E from zero, so the learning rate is relative to the stage's scale.
/// No minimality penalty is needed: every g_l(v) is already the minimum-norm preimage of its image (row space of A_l).
/// Deterministic: batches are drawn from a generator seeded from (Seed, stage name).
/// </summary>
public static class MipInTraining
{
    public static MipInInverse Train(nn.Module<Tensor, Tensor> model, Tensor references, MipInTrainingOptions options)
    {
        if (options.Steps < 1 || options.BatchSize < 1 || options.LearningRate <= 0)
            throw new ArgumentOutOfRangeException(nameof(options), options, "mip_in: steps, batch size and learning rate must be positive");
        var layered = MipInInverse.Layered(model);
        model.eval();
        var stages = layered.Stages;
        var mixings = new Tensor[stages.Count];
        try
        {
            for (int l = stages.Count - 1; l >= 0; l--)
                mixings[l] = TrainStage(layered, stages, mixings, l, references, options);
        }
        catch
        {
            foreach (var d in mixings) d?.Dispose();
            throw;
        }
        return new MipInInverse(stages, mixings);
    }

    static Tensor TrainStage(ILayeredModel model, IReadOnlyList<string> stages, Tensor[] mixings, int l, Tensor references, MipInTrainingOptions options)
    {
        using var scope = NewDisposeScope();
        using var generator = Seeds.Generator(options.Seed, $"mip_in/{stages[l]}", CPU);
        long count = references.shape[0];
        long batch = Math.Min(options.BatchSize, count);
        Tensor Batch() => references.index_select(0, randperm(count, generator: generator).narrow(0, 0, batch).to(references.device));
        bool gate = l > 0;

        var (firstInput, firstSignal, firstGradient) = SignalAt(model, stages, mixings, l, Batch());
        long units = firstSignal.shape[1];
        var identity = eye(units, dtype: firstSignal.dtype, device: firstSignal.device);
        // The best single scale c = <A g(v), v> / |A g(v)|^2 for D = I: the starting point, and the unit of E.
        Tensor baseScale;
        using (var enableGrad = enable_grad())
        {
            var z = MipInInverse.Reproduce(model, stages[l], firstInput, MipInInverse.Back(model, stages[l], firstInput, firstSignal, gate, createGraph: true)).detach();
            baseScale = ((z * firstSignal).sum() / z.square().sum().clamp_min(1e-30)).detach();
        }
        var logDiagonal = new TorchSharp.Modules.Parameter(zeros(units, firstSignal.dtype, firstSignal.device), requires_grad: true);
        var offDiagonal = new TorchSharp.Modules.Parameter(zeros(units, units, firstSignal.dtype, firstSignal.device), requires_grad: true);
        var outside = 1 - identity;
        Tensor Mixing() => baseScale * (diag(logDiagonal.exp()) + offDiagonal * outside);
        using var adam = optim.Adam([logDiagonal, offDiagonal], options.LearningRate);
        // Decay to a thousandth of the rate by the last step: at a constant rate Adam keeps jittering around the optimum by about the rate.
        var schedule = optim.lr_scheduler.ExponentialLR(adam, Math.Pow(1e-3, 1.0 / options.Steps));
        for (int step = 0; step < options.Steps; step++)
        {
            using var stepScope = NewDisposeScope();
            var (stageInput, signal, gradient) = step == 0 ? (firstInput, firstSignal, firstGradient) : SignalAt(model, stages, mixings, l, Batch());
            using var enableGrad = enable_grad();
            adam.zero_grad();
            var u = MipInInverse.Back(model, stages[l], stageInput, MipInInverse.Mix(Mixing(), signal), gate, createGraph: true);
            var residual = MipInInverse.Reproduce(model, stages[l], stageInput, u) - signal;
            var loss = residual.square().sum() / signal.square().sum().clamp_min(1e-30)
                     + TaylorDerivatives.RowDot(gradient, residual).square().sum() / TaylorDerivatives.RowDot(gradient, signal).square().sum().clamp_min(1e-30);
            loss.backward();
            adam.step();
            schedule.step();
        }
        using var noGrad = no_grad();
        var result = Mixing().detach().clone().MoveToOuterDisposeScope();
        logDiagonal.Dispose();
        offDiagonal.Dispose();
        return result;
    }

    /// <summary>The input of stage l and the (projected) signal arriving at its output from the trained inverses above, for a batch.</summary>
    static (Tensor StageInput, Tensor Signal, Tensor Gradient) SignalAt(ILayeredModel model, IReadOnlyList<string> stages, Tensor[] mixings, int l, Tensor inputs)
    {
        var activations = MipInInverse.Activations(model, stages, inputs);
        var top = activations[^1];
        var seed = nn.functional.one_hot(top.argmax(1), top.shape[1]).to(top.dtype);
        var (signal, gradient) = MipInInverse.Descend(model, stages, mixings, activations, seed, l + 1, correct: true);
        return (activations[l], signal, gradient);
    }
}
