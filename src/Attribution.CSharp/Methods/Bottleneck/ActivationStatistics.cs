using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Per-element statistics of the activation R after <see cref="Stage"/> over a set of reference inputs, which
/// the information bottleneck's noise eps ~ N(Mean, Std^2) and its prior Q(Z) use (Schulz et al. 2020, Sec. 3.1).
/// All three tensors are shaped like one activation, e.g. [K, h, w]. <see cref="Std"/> is at least
/// <c>minStd</c> (the reference implementation's 0.01), so that a dead unit's KL stays finite.
/// <see cref="Active"/> is 1 where R != 0 in more than 1% of the references, else 0 (the reference
/// implementation's <c>active_neurons</c>): elsewhere the bottleneck passes 0 and counts no capacity.
/// Estimate once per model and stage with <see cref="InformationBottleneck.EstimateActivationStatistics"/> and
/// reuse it for every explanation; the record owns its tensors.
/// </summary>
public sealed record ActivationStatistics(string Stage, Tensor Mean, Tensor Std, Tensor Active, long ReferenceCount) : IDisposable
{
    public void Dispose()
    {
        Mean.Dispose();
        Std.Dispose();
        Active.Dispose();
    }
}
