using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Attribution maps (same shape as the inputs) and per-input diagnostics, e.g. the Monte-Carlo
/// estimates <c>entropy</c> = Ent_mu(f) and <c>half_fisher_information</c> = I_mu(f)/2 of the
/// log-Sobolev certificate. The caller owns (and disposes) the tensors.
/// </summary>
public sealed class Explanation : IDisposable
{
    public Explanation(Tensor maps, IReadOnlyDictionary<string, Tensor>? diagnostics = null)
    {
        Maps = maps;
        Diagnostics = diagnostics ?? new Dictionary<string, Tensor>();
    }

    /// <summary>Attributions, shaped like the inputs.</summary>
    public Tensor Maps { get; }

    /// <summary>Per-input scalars [B] by name.</summary>
    public IReadOnlyDictionary<string, Tensor> Diagnostics { get; }

    public void Dispose()
    {
        Maps.Dispose();
        foreach (var d in Diagnostics.Values) d.Dispose();
    }
}
