using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// DeepSHAP as Captum's DeepLiftShap (Lundberg and Lee 2017, Sec. 4.2): DeepLIFT-Rescale of each input
/// against every reference in a set [R, ...] (Captum uses all of them, it does not sample), averaged over
/// the references. Its sum is f(x) - mean_j f(b_j) (see <see cref="DeepLift"/> for when exactly).
/// All (input, reference) pairs of all inputs go through the network together, cut into chunks of
/// <see cref="ExplainOptions.BatchSize"/> rows (half inputs, half their references).
/// <para>Diagnostic <c>convergence_delta</c> per input: sum of the map minus (f(x) - mean_j f(b_j)), Captum's
/// <c>return_convergence_delta</c> averaged over the references; zero (to rounding) for ReLU networks whose
/// max-pools are swapped.</para>
/// </summary>
public sealed class DeepLiftShap : IAttributionMethod
{
    readonly Tensor references;

    /// <param name="references">Reference inputs [R, ...], each shaped like one input. Held, not copied: the
    /// caller keeps it alive (and disposes it) while the method is used.</param>
    public DeepLiftShap(Tensor references)
    {
        if (references.shape.Length < 2 || references.shape[0] < 1)
            throw new ArgumentException($"deep_lift_shap: references must be [R, ...] with R >= 1, got [{string.Join(", ", references.shape)}]");
        this.references = references;
    }

    /// <summary>R, the number of references.</summary>
    public long Count => references.shape[0];

    public string Describe() => $"deep_lift_shap: DeepLIFT rescale rule averaged over {Count} references";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options) =>
        Attribute("deep_lift_shap", model, inputs, targets, references, options);

    /// <summary>
    /// mean_j (x - b_j) (.) m(x, b_j) per input, m the chain of Rescale multipliers from the target logit to
    /// the input, formed by one backward pass through the paired batch [x; b_j].
    /// </summary>
    internal static Explanation Attribute(string name, nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, Tensor references,
                                          ExplainOptions options)
    {
        options.Check();
        if (options.Output != OutputFunction.Logit)
            throw new ArgumentException($"{name} attributes the logit (output: logit): the Rescale rule is defined for elementwise nonlinearities, and the softmax couples all logits");
        if (model is not IRectifiedModel rectified)
            throw new ArgumentException($"{name} needs a model whose ReLUs can be replaced (IRectifiedModel); {model.GetType().Name} is not one");
        if (targets.shape.Length != 1 || targets.shape[0] != inputs.shape[0])
            throw new ArgumentException($"targets must be a vector with one class per input: inputs [{string.Join(", ", inputs.shape)}], targets [{string.Join(", ", targets.shape)}]");
        if (!inputs.shape.Skip(1).SequenceEqual(references.shape.Skip(1)))
            throw new ArgumentException($"{name}: inputs [{string.Join(", ", inputs.shape)}] do not match the references [{string.Join(", ", references.shape)}]");
        model.eval();

        using var scope = NewDisposeScope();
        long count = inputs.shape[0], r = references.shape[0];
        var refs = references.to(inputs.dtype).to(inputs.device);
        Tensor referenceLogits;
        using (no_grad()) referenceLogits = model.forward(refs);   // plain ReLUs: the swap below comes after

        var sums = zeros(inputs.shape, ScalarType.Float64, inputs.device);
        var delta = zeros(count, ScalarType.Float64, inputs.device);
        long pairsPerChunk = Math.Max(1, options.PointsPerChunk(inputs) / 2);
        using var paired = new PairedForward(model);
        using (rectified.UseRectifier(RescaleRectifier.Create(() => paired.Pairs)))
        using (rectified.UseMaxPool((x, kernel) => RescaleMaxPool2d.apply(x, kernel)))
        {
            for (long start = 0; start < count * r; start += pairsPerChunk)
            {
                using var chunkScope = NewDisposeScope();
                long end = Math.Min(start + pairsPerChunk, count * r);
                var pairIds = Enumerable.Range(0, (int)(end - start)).Select(k => start + k).ToArray();
                var owner = tensor(pairIds.Select(p => p / r).ToArray(), ScalarType.Int64, inputs.device);
                var which = tensor(pairIds.Select(p => p % r).ToArray(), ScalarType.Int64, inputs.device);
                var z = inputs.index_select(0, owner);
                var b = refs.index_select(0, which);
                var t = targets.to(inputs.device).index_select(0, owner);
                paired.Use(b);
                var (values, multipliers, _) = GradientEngine.Evaluate(paired, z, t, OutputFunction.Logit);
                var contribution = (multipliers * (z - b)).to(ScalarType.Float64);
                sums.index_add_(0, owner, contribution, 1.0 / r);
                var fb = referenceLogits.index_select(0, which).gather(1, t.unsqueeze(1)).squeeze(1);
                var gap = contribution.flatten(1).sum(1) - (values - fb).to(ScalarType.Float64);
                delta.index_add_(0, owner, gap, 1.0 / r);
            }
        }
        var diagnostics = new Dictionary<string, Tensor> { ["convergence_delta"] = delta.MoveToOuterDisposeScope() };
        return new Explanation(sums.to(inputs.dtype).MoveToOuterDisposeScope(), diagnostics);
    }

    /// <summary>
    /// f on the paired batch [z; b] (Captum's concatenation trick), returning the logits of the z half only:
    /// the engine's gradient with respect to z is then the chain of Rescale multipliers.
    /// </summary>
    sealed class PairedForward(nn.Module<Tensor, Tensor> model) : nn.Module<Tensor, Tensor>("paired_forward")
    {
        Tensor? references;

        /// <summary>Rows of the current chunk's inputs (and of its references).</summary>
        public long Pairs => references?.shape[0] ?? 0;

        public void Use(Tensor chunkReferences) => references = chunkReferences;

        public override Tensor forward(Tensor z)
        {
            var b = references ?? throw new InvalidOperationException("no references set for the paired forward pass");
            if (z.shape[0] != b.shape[0]) throw new InvalidOperationException($"{z.shape[0]} inputs for {b.shape[0]} references");
            return model.forward(cat([z, b], 0)).narrow(0, 0, z.shape[0]);
        }
    }
}
