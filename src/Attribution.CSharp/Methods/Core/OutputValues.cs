using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>The explained function's values f(x) for each row's target, without gradients, in chunks.</summary>
public static class OutputValues
{
    /// <summary>f of each row of <paramref name="inputs"/> [B, ...] for its target: [B], float64, on the inputs' device.</summary>
    public static Tensor Of(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, OutputFunction output, int batchSize)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "at least one row a chunk");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var parts = new List<Tensor>();
        for (long start = 0; start < inputs.shape[0]; start += batchSize)
        {
            long n = Math.Min(batchSize, inputs.shape[0] - start);
            var logits = model.forward(inputs.narrow(0, start, n)).to(ScalarType.Float64);
            var picked = targets.narrow(0, start, n).unsqueeze(1);
            var values = output == OutputFunction.Logit ? logits.gather(1, picked) : nn.functional.softmax(logits, 1).gather(1, picked);
            parts.Add(values.squeeze(1));
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }
}
