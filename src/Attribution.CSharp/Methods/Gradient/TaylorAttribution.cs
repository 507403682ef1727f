using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>Which Taylor terms a <see cref="TaylorAttribution"/> map adds up.</summary>
[Flags]
public enum TaylorTerms
{
    /// <summary>g_i Delta_i.</summary>
    First = 1,
    /// <summary>f^(k)_{i..i} Delta_i^k / k!, k = 2..order.</summary>
    Independent = 2,
    /// <summary>Feature i's Euler share of the k-th order interactive terms, k = 2..order.</summary>
    Interactive = 4,
    /// <summary>All three: the map then sums to f(x) - f(x~) minus the remainder.</summary>
    All = First | Independent | Interactive,
}

/// <summary>
/// Taylor attribution (Deng et al. 2020, arXiv 2008.09695): the chosen terms of the order-K Taylor
/// decomposition of f(x) - f(x~) around the baseline (see <see cref="TaylorDecomposition"/>). Order 1 with
/// First is their first-order Taylor attribution g(x~) (.) Delta; order 2 with All is the second-order one
/// (first order, independent terms, pairwise interactions split half and half).
/// <para>Diagnostics per input: <c>difference</c> f(x) - f(x~), <c>first_total</c>, <c>independent_total</c> and
/// <c>interactive_total</c> (summed over orders 2..K), and <c>remainder</c> (the approximation error).</para>
/// </summary>
public sealed class TaylorAttribution : IAttributionMethod
{
    public TaylorAttribution(int order = 2, TaylorTerms terms = TaylorTerms.All, double baseline = 0.0)
    {
        if (order < 1 || order > 3) throw new ArgumentOutOfRangeException(nameof(order), order, "taylor: orders 1, 2 and 3 are computed");
        if (terms == 0 || (terms & ~TaylorTerms.All) != 0) throw new ArgumentOutOfRangeException(nameof(terms), terms, "taylor: pick at least one of First, Independent, Interactive");
        Order = order; Terms = terms; Baseline = baseline;
    }

    public int Order { get; }
    public TaylorTerms Terms { get; }
    public double Baseline { get; }

    public string Describe() => $"taylor: order {Order}, terms {Terms}, baseline {Baseline}";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        using var scope = NewDisposeScope();
        using var taylor = TaylorDecomposition.Compute(model, inputs, targets, options, Baseline, Order);
        var independent = zeros_like(inputs);
        var interactive = zeros_like(inputs);
        for (int k = 2; k <= Order; k++)
        {
            independent = independent + taylor.Independent(k);
            interactive = interactive + taylor.Interactive(k);
        }
        var map = zeros_like(inputs);
        if (Terms.HasFlag(TaylorTerms.First)) map = map + taylor.First;
        if (Terms.HasFlag(TaylorTerms.Independent)) map = map + independent;
        if (Terms.HasFlag(TaylorTerms.Interactive)) map = map + interactive;
        var diagnostics = new Dictionary<string, Tensor>
        {
            ["difference"] = (taylor.Output - taylor.BaselineOutput).MoveToOuterDisposeScope(),
            ["first_total"] = taylor.First.flatten(1).sum(1).MoveToOuterDisposeScope(),
            ["independent_total"] = independent.flatten(1).sum(1).MoveToOuterDisposeScope(),
            ["interactive_total"] = interactive.flatten(1).sum(1).MoveToOuterDisposeScope(),
            ["remainder"] = taylor.Remainder.clone().MoveToOuterDisposeScope(),
        };
        return new Explanation(map.MoveToOuterDisposeScope(), diagnostics);
    }
}
