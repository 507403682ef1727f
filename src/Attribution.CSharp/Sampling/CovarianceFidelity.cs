using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>One structure's fidelity to the full covariance and what it costs.</summary>
/// <param name="Structure">The structure's name.</param>
/// <param name="RelativeFrobeniusError">|Sigma_structure - Sigma|_F / |Sigma|_F.</param>
/// <param name="Bytes">Bytes the structure holds per class (float32).</param>
/// <param name="FullBytes">Bytes of the full D x D matrix (float32).</param>
public sealed record FidelityRow(string Structure, double RelativeFrobeniusError, long Bytes, long FullBytes);

/// <summary>
/// How far a <see cref="CovarianceStructure"/> is from the full covariance, and the memory each needs: for
/// choosing a structure on a small input before using it on a large one, where the full matrix cannot be formed.
/// </summary>
public static class CovarianceFidelity
{
    /// <summary>|Sigma_model,k - full|_F / |full|_F for class <paramref name="cls"/> against a full [D, D] matrix.</summary>
    public static double RelativeError(ICovarianceModel model, long cls, Tensor full)
    {
        using var scope = NewDisposeScope();
        var reference = full.to(ScalarType.Float64).to(CPU);
        var approximation = model.Dense(cls).to(CPU);
        return ((approximation - reference).norm().item<double>()) / reference.norm().item<double>();
    }

    /// <summary>Bytes of the full D x D float32 covariance of inputs [C, H, W].</summary>
    public static long FullBytes(long channels, long height, long width) => new CovarianceStructure.Full().Bytes(channels, height, width);

    /// <summary>Each structure built from <paramref name="full"/> [D, D] (D = C*H*W), its relative error and its bytes.</summary>
    public static IReadOnlyList<FidelityRow> Compare(Tensor full, long channels, long height, long width,
                                                     IEnumerable<CovarianceStructure> structures, double relativeJitter = 0.0)
    {
        var rows = new List<FidelityRow>();
        foreach (var structure in structures)
        {
            using var model = CovarianceModels.FromFull(full, channels, height, width, structure, relativeJitter);
            rows.Add(new FidelityRow(structure.Name, RelativeError(model, 0, full),
                                     structure.Bytes(channels, height, width), FullBytes(channels, height, width)));
        }
        return rows;
    }
}
