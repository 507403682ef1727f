using System.Globalization;
using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// An <see cref="ICovarianceModel"/> as named tensors and text metadata, and back: what a cache or an export writes
/// to a safetensors file, so that a model estimated once is restored instead of estimated again. Every tensor the
/// model draws and multiplies with is stored as it is held (float32 factors and their products, U and d; float64
/// jitters), so a restored model samples and applies bit for bit as the estimated one. No files are read or written here.
/// </summary>
public static class StoredCovarianceModel
{
    /// <summary>
    /// The model's tensors (on the CPU; the caller disposes them) and metadata: <c>structure</c> (the structure's
    /// name), <c>rank</c> (low rank only), <c>channels</c>, <c>height</c>, <c>width</c>, <c>classes</c> and
    /// <c>estimator</c> (how it was estimated, in words, as given). Dense structures store <c>factor</c> (L, float32,
    /// [K, P, P] shared across channels, [K, B, n, n] otherwise) and <c>covariance</c> (L L^T as held, the product
    /// <see cref="ICovarianceModel.Apply"/> uses); low rank stores <c>u</c> [K, D, r] and <c>diagonal</c> [K, D];
    /// every structure stores <c>jitter</c> [K] (float64).
    /// </summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) ToParts(ICovarianceModel model, string estimator)
    {
        using var scope = NewDisposeScope();
        // copies, so that the caller disposing them never touches the model's own tensors
        static Tensor Copy(Tensor t) => t.cpu().contiguous().clone().MoveToOuterDisposeScope();
        var tensors = new Dictionary<string, Tensor>();
        switch (model)
        {
            case DenseBlockCovariance dense:
                tensors["factor"] = Copy(dense.Factors);
                tensors["covariance"] = Copy(dense.Sigmas);
                break;
            case LowRankPlusDiagonalCovariance lowRank:
                tensors["u"] = Copy(lowRank.U);
                tensors["diagonal"] = Copy(lowRank.Diagonals);
                break;
            default:
                throw new ArgumentException($"no stored form for the covariance model {model.GetType().Name}");
        }
        tensors["jitter"] = tensor(model.Jitters.ToArray(), dtype: ScalarType.Float64).MoveToOuterDisposeScope();
        var metadata = new Dictionary<string, string>
        {
            ["structure"] = model.Structure.Name,
            ["channels"] = Invariant(model.Channels),
            ["height"] = Invariant(model.Height),
            ["width"] = Invariant(model.Width),
            ["classes"] = Invariant(model.Classes),
            ["estimator"] = estimator,
        };
        if (model.Structure is CovarianceStructure.LowRankPlusDiagonal lr) metadata["rank"] = Invariant(lr.Rank);
        return (tensors, metadata);
    }

    /// <summary>
    /// The model stored by <see cref="ToParts"/>, on <paramref name="device"/>. The given tensors stay the caller's
    /// (the model holds its own handles). Shapes and names are checked against the metadata.
    /// </summary>
    public static ICovarianceModel Restore(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> metadata, Device? device = null)
    {
        using var scope = NewDisposeScope();   // temporaries only: the model's tensors are detached from it
        string Field(string name) => metadata.TryGetValue(name, out var v) ? v : throw new ArgumentException($"stored covariance model: metadata '{name}' is missing");
        Tensor Named(string name) => tensors.TryGetValue(name, out var t) ? t : throw new ArgumentException($"stored covariance model: tensor '{name}' is missing");
        long channels = long.Parse(Field("channels"), CultureInfo.InvariantCulture);
        long height = long.Parse(Field("height"), CultureInfo.InvariantCulture);
        long width = long.Parse(Field("width"), CultureInfo.InvariantCulture);
        long p = height * width, d = channels * p;
        var jitters = Named("jitter").to(ScalarType.Float64).cpu().data<double>().ToArray();
        long k = jitters.Length;
        CovarianceStructure structure = Field("structure") switch
        {
            "shared_across_channels" => new CovarianceStructure.SharedAcrossChannels(),
            "per_channel" => new CovarianceStructure.PerChannel(),
            "full" => new CovarianceStructure.Full(),
            var name when name.StartsWith("low_rank_plus_diagonal_", StringComparison.Ordinal) =>
                new CovarianceStructure.LowRankPlusDiagonal(int.Parse(Field("rank"), CultureInfo.InvariantCulture)),
            var name => throw new ArgumentException($"stored covariance model: unknown structure '{name}'"),
        };
        if (structure.Name != Field("structure")) throw new ArgumentException($"stored covariance model: structure '{Field("structure")}' does not match rank {Field("rank")}");
        device ??= CPU;
        Tensor Own(string name, long[] shape, ScalarType dtype)
        {
            var t = Named(name);
            if (!t.shape.SequenceEqual(shape) || t.dtype != dtype)
                throw new ArgumentException($"stored covariance model ({structure.Name}): '{name}' is {t.dtype} [{string.Join(", ", t.shape)}], expected {dtype} [{string.Join(", ", shape)}]");
            // a handle of our own, outside any dispose scope the caller reads the file in
            return t.to(device).alias().DetachFromDisposeScope();
        }
        if (structure is CovarianceStructure.LowRankPlusDiagonal lowRank)
            return new LowRankPlusDiagonalCovariance(Own("u", [k, d, lowRank.Rank], ScalarType.Float32), Own("diagonal", [k, d], ScalarType.Float32),
                                                     jitters, lowRank, channels, height, width);
        bool shared = structure is CovarianceStructure.SharedAcrossChannels;
        long[] blockShape = structure switch
        {
            CovarianceStructure.SharedAcrossChannels => [k, p, p],
            CovarianceStructure.PerChannel => [k, channels, p, p],
            _ => [k, 1, d, d],
        };
        var factors = Own("factor", blockShape, ScalarType.Float32);
        var sigmas = Own("covariance", blockShape, ScalarType.Float32);
        return new DenseBlockCovariance(factors, shared, structure, jitters, channels, height, width, owner: new Both(factors, sigmas), sigmas);
    }

    static string Invariant(long x) => x.ToString(CultureInfo.InvariantCulture);

    /// <summary>Disposes the restored factors and products together (the dense model owns neither when given both).</summary>
    sealed class Both(Tensor first, Tensor second) : IDisposable
    {
        public void Dispose() { first.Dispose(); second.Dispose(); }
    }
}
