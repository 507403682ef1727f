using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The Taylor decomposition of f(x) - f(x~) around the baseline x~ (Deng et al. 2020, "A Unified Taylor
/// Framework for Revisiting Attribution Methods", arXiv 2008.09695), with Delta = x - x~:
/// <code>
///   f(x) - f(x~) = sum_i g_i Delta_i                                   first order
///                + sum_k>=2 sum_i f^(k)_{i..i} Delta_i^k / k!           k-th order independent terms
///                + sum_k>=2 [T_k(Delta) - independent_k]                k-th order interactive terms
///                + remainder                                            everything of order > K
/// </code>
/// where T_k(Delta) = D^k f(x~)[Delta, .., Delta] / k! is the whole k-th order term. Each map is per feature,
/// shaped like the inputs. The interactive part of order k is split over the features by Euler's rule for
/// homogeneous polynomials, share_i = Delta_i dT_k/dDelta_i / k, which sums to T_k: a pairwise term
/// H_ij Delta_i Delta_j (i != j) goes half to i and half to j, so the order-2 interactive share of feature i is
/// (Delta_i (H Delta)_i - H_ii Delta_i^2) / 2; a monomial Delta^alpha of order k goes alpha_i / k to feature i.
/// <para>Computed exactly (no finite differences), K = 1, 2 or 3:
/// first order: one backward pass at x~; order 2: one Hessian-vector product with Delta (double backward)
/// for the total, plus d HVPs with one-hot vectors per input for the diagonal H_ii (d = features per input),
/// run as B*d rows chunked by the batch size; order 3: one more backward on each path, T[Delta, Delta, .] and
/// the diagonal f_iii. The one-hot rows are exact but cost d double-backward rows per input: fine for tabular
/// inputs and small images (784 pixels), expensive beyond. The full Hessian is a by-product of the same rows
/// and is kept only on request (<c>keepHessian</c>), for the fidelity analysis. Third-order interactions are
/// computed in total and per feature, fourth and higher orders are only in the remainder.</para>
/// </summary>
public sealed class TaylorDecomposition : IDisposable
{
    readonly Tensor[] independent;
    readonly Tensor[] interactive;

    TaylorDecomposition(int order, double baseline, Tensor output, Tensor baselineOutput, Tensor delta, Tensor gradient,
                        Tensor first, Tensor[] independent, Tensor[] interactive, Tensor? hessian)
    {
        Order = order; Baseline = baseline; Output = output; BaselineOutput = baselineOutput; Delta = delta; Gradient = gradient;
        First = first; this.independent = independent; this.interactive = interactive; Hessian = hessian;
        var computed = first.flatten(1).sum(1);
        for (int k = 0; k < independent.Length; k++) computed = computed + independent[k].flatten(1).sum(1) + interactive[k].flatten(1).sum(1);
        Remainder = ((output - baselineOutput) - computed).MoveToOuterDisposeScope();   // built inside Compute's scope
    }

    /// <summary>Highest order computed (1, 2 or 3).</summary>
    public int Order { get; }

    /// <summary>The baseline value x~ (every feature).</summary>
    public double Baseline { get; }

    /// <summary>f(x) [B].</summary>
    public Tensor Output { get; }

    /// <summary>f(x~) [B].</summary>
    public Tensor BaselineOutput { get; }

    /// <summary>Delta = x - x~, shaped like the inputs.</summary>
    public Tensor Delta { get; }

    /// <summary>grad f(x~), shaped like the inputs.</summary>
    public Tensor Gradient { get; }

    /// <summary>First-order terms g_i Delta_i, shaped like the inputs.</summary>
    public Tensor First { get; }

    /// <summary>The Hessian at x~ [B, d, d] (flattened features), when asked for.</summary>
    public Tensor? Hessian { get; }

    /// <summary>f(x) - f(x~) minus every computed term [B]: the approximation error of order <see cref="Order"/>.</summary>
    public Tensor Remainder { get; }

    /// <summary>k-th order independent terms f^(k)_{i..i} Delta_i^k / k!, shaped like the inputs (2 &lt;= k &lt;= Order).</summary>
    public Tensor Independent(int k) => independent[CheckOrder(k) - 2];

    /// <summary>Each feature's share of the k-th order interactive terms (Euler split), shaped like the inputs (2 &lt;= k &lt;= Order).</summary>
    public Tensor Interactive(int k) => interactive[CheckOrder(k) - 2];

    int CheckOrder(int k)
    {
        if (k < 2 || k > Order) throw new ArgumentOutOfRangeException(nameof(k), k, $"high-order terms run from 2 to {Order}");
        return k;
    }

    /// <summary>
    /// Decomposes f_target(x) - f_target(x~) for every input, x~ = <paramref name="baseline"/> everywhere, up to
    /// <paramref name="order"/>. Chunks of <see cref="ExplainOptions.BatchSize"/> rows; the one-hot rows of all inputs are laid end to end.
    /// </summary>
    public static TaylorDecomposition Compute(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options,
                                              double baseline = 0.0, int order = 2, bool keepHessian = false)
    {
        options.Check();
        if (order < 1 || order > 3) throw new ArgumentOutOfRangeException(nameof(order), order, "taylor: orders 1, 2 and 3 are computed");
        if (targets.shape.Length != 1 || targets.shape[0] != inputs.shape[0])
            throw new ArgumentException("taylor: targets must be a vector with one class per input");
        model.eval();
        using var scope = NewDisposeScope();
        long count = inputs.shape[0];
        var output = PerturbationEngine.Values(model, inputs, targets, options);
        var baselines = full_like(inputs, baseline);
        var baselineOutput = PerturbationEngine.Values(model, baselines, targets, options);
        var delta = inputs - baselines;

        var gradient = zeros_like(inputs);
        var share2 = zeros_like(inputs);
        var share3 = zeros_like(inputs);
        long chunk = options.PointsPerChunk(inputs);
        for (long start = 0; start < count; start += chunk)
        {
            using var chunkScope = NewDisposeScope();
            using var enableGrad = enable_grad();
            long n = Math.Min(chunk, count - start);
            var z = baselines.narrow(0, start, n).detach().requires_grad_(true);
            var d = delta.narrow(0, start, n);
            var g = TaylorDerivatives.Derivative(TaylorDerivatives.Value(model, z, targets.narrow(0, start, n), options.Output), z, createGraph: order >= 2);
            gradient.narrow(0, start, n).copy_(g.detach());
            if (order < 2) continue;
            var hd = TaylorDerivatives.Derivative(TaylorDerivatives.RowDot(g, d), z, createGraph: order >= 3);
            share2.narrow(0, start, n).copy_(0.5 * d * hd.detach());       // Delta_i (H Delta)_i / 2
            if (order < 3) continue;
            var tdd = TaylorDerivatives.Derivative(TaylorDerivatives.RowDot(hd, d), z, createGraph: false);
            share3.narrow(0, start, n).copy_(d * tdd / 6.0);              // Delta_i T[Delta, Delta, e_i] / 6
        }

        var independent = new List<Tensor>();
        var interactive = new List<Tensor>();
        Tensor? hessian = null;
        if (order >= 2)
        {
            var (diag2, diag3, fullHessian) = Diagonals(model, baselines, targets, options, order, keepHessian);
            var indep2 = 0.5 * diag2 * delta.square();
            independent.Add(indep2.MoveToOuterDisposeScope());
            interactive.Add((share2 - indep2).MoveToOuterDisposeScope());
            if (order >= 3)
            {
                var indep3 = diag3! * delta.pow(3) / 6.0;
                independent.Add(indep3.MoveToOuterDisposeScope());
                interactive.Add((share3 - indep3).MoveToOuterDisposeScope());
            }
            hessian = fullHessian?.MoveToOuterDisposeScope();
        }
        var first = (gradient * delta).MoveToOuterDisposeScope();
        return new TaylorDecomposition(order, baseline, output.MoveToOuterDisposeScope(), baselineOutput.MoveToOuterDisposeScope(),
                                       delta.MoveToOuterDisposeScope(), gradient.MoveToOuterDisposeScope(), first,
                                       independent.ToArray(), interactive.ToArray(), hessian);
    }

    /// <summary>
    /// H_ii (and f_iii for order 3, and the whole Hessian when asked) from HVPs with one-hot vectors e_k:
    /// row r of the sweep is input r / d at x~ with v = e_(r mod d); (H e_k)_k = H_kk and H e_k is column k of H.
    /// </summary>
    static (Tensor Diag2, Tensor? Diag3, Tensor? Hessian) Diagonals(nn.Module<Tensor, Tensor> model, Tensor baselines, Tensor targets,
                                                                  ExplainOptions options, int order, bool keepHessian)
    {
        using var scope = NewDisposeScope();
        long count = baselines.shape[0];
        long features = baselines[0].numel();
        long rows = count * features;
        var flatBaselines = baselines.reshape(count, features);
        var diag2 = zeros(rows, baselines.dtype, baselines.device);
        var diag3 = order >= 3 ? zeros(rows, baselines.dtype, baselines.device) : null;
        var hessian = keepHessian ? zeros(new[] { count, features, features }, baselines.dtype, baselines.device) : null;
        var rowShape = baselines.shape.ToArray();
        long chunk = options.PointsPerChunk(baselines);
        for (long start = 0; start < rows; start += chunk)
        {
            using var chunkScope = NewDisposeScope();
            using var enableGrad = enable_grad();
            long n = Math.Min(chunk, rows - start);
            var index = arange(start, start + n, ScalarType.Int64, baselines.device);
            var owner = index.div(features, rounding_mode: RoundingMode.floor);
            var coordinate = index.remainder(features);
            rowShape[0] = n;
            var v = nn.functional.one_hot(coordinate, features).to(baselines.dtype).view(rowShape);
            var z = flatBaselines.index_select(0, owner).view(rowShape).detach().requires_grad_(true);
            var g = TaylorDerivatives.Derivative(TaylorDerivatives.Value(model, z, targets.index_select(0, owner), options.Output), z, createGraph: true);
            var hv = TaylorDerivatives.Derivative(TaylorDerivatives.RowDot(g, v), z, createGraph: order >= 3);
            var hkk = TaylorDerivatives.RowDot(hv, v);
            diag2.index_copy_(0, index, hkk.detach());
            if (hessian is not null)
                hessian.view(rows, features).index_copy_(0, index, hv.detach().reshape(n, features));   // symmetric: row k = column k
            if (diag3 is not null)
                diag3.index_copy_(0, index, TaylorDerivatives.RowDot(TaylorDerivatives.Derivative(hkk, z, createGraph: false), v));
        }
        return (diag2.view(baselines.shape).MoveToOuterDisposeScope(), diag3?.view(baselines.shape).MoveToOuterDisposeScope(), hessian?.MoveToOuterDisposeScope());
    }

    public void Dispose()
    {
        Output.Dispose(); BaselineOutput.Dispose(); Delta.Dispose(); Gradient.Dispose(); First.Dispose(); Remainder.Dispose();
        Hessian?.Dispose();
        foreach (var t in independent) t.Dispose();
        foreach (var t in interactive) t.Dispose();
    }
}
