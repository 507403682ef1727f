using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// Sigma ~ U U^T + diag(d) (<see cref="CovarianceStructure.LowRankPlusDiagonal"/>): U [D, r] holds the top r
/// principal directions scaled by the square roots of their variances (a plain PCA, which by Eckart-Young is
/// the best rank-r approximation in Frobenius norm), and d = diag(Sigma) - diag(U U^T) the residual variances,
/// so every feature keeps its own variance exactly. d is kept at least a small positive floor (the recorded
/// jitter) so the model is positive definite. We did not subtract the mean of the discarded eigenvalues
/// (probabilistic PCA): that is the maximum-likelihood choice when the residual is isotropic, which pixel
/// residuals are not, and the residual diagonal already accounts for the rest of the variance.
/// Noise: U eps1 + sqrt(d) eps2 (eps = [eps1, eps2], r + D normals); Sigma g = U (U^T g) + d g. Nothing D x D is formed.
/// </summary>
public sealed class LowRankPlusDiagonalCovariance : ICovarianceModel
{
    readonly Tensor u;         // [K, D, r]
    readonly Tensor diagonal;  // [K, D]

    internal LowRankPlusDiagonalCovariance(Tensor u, Tensor diagonal, double[] jitters, CovarianceStructure.LowRankPlusDiagonal structure, long channels, long height, long width)
    {
        this.u = u; this.diagonal = diagonal; Jitters = jitters; Structure = structure;
        Rank = structure.Rank; Channels = channels; Height = height; Width = width;
    }

    /// <summary>
    /// U and d side by side, [D, r + 1] float32, from eigenvalues (descending, [m]), their eigenvectors [D, m]
    /// and the diagonal of Sigma [D]; fewer than r eigenpairs (fewer samples than r) leave zero columns.
    /// </summary>
    internal static (Tensor, double) Parts(Tensor eigenvalues, Tensor eigenvectors, Tensor sigmaDiagonal, int rank, double relativeJitter)
    {
        long d = eigenvectors.shape[0], kept = Math.Min(rank, eigenvalues.shape[0]);
        var u = zeros([d, rank], ScalarType.Float64, eigenvectors.device);
        u.narrow(1, 0, kept).copy_(eigenvectors.narrow(1, 0, kept) * eigenvalues.narrow(0, 0, kept).clamp_min(0).sqrt());
        double meanDiagonal = Math.Max(sigmaDiagonal.mean().item<double>(), 1e-12);
        double floor = Math.Max(relativeJitter, 1e-12) * meanDiagonal;
        var residual = (sigmaDiagonal - u.square().sum([1])).clamp_min(floor);
        return (cat([u, residual.unsqueeze(1)], 1).to(ScalarType.Float32), floor);
    }

    public CovarianceStructure Structure { get; }
    public int Rank { get; }
    public long Classes => u.shape[0];
    public long Channels { get; }
    public long Height { get; }
    public long Width { get; }
    public long Features => Channels * Height * Width;
    public long NoiseDimension => Rank + Features;
    public long FloatsPerClass => Structure.Floats(Channels, Height, Width);
    public IReadOnlyList<double> Jitters { get; }

    /// <summary>U of a class, [D, r] (float32).</summary>
    public Tensor Factor(long cls) => u[cls];
    /// <summary>d of a class, [D] (float32).</summary>
    public Tensor Diagonal(long cls) => diagonal[cls];

    /// <summary>U of every class, [K, D, r] (float32). Not a copy.</summary>
    internal Tensor U => u;
    /// <summary>d of every class, [K, D] (float32). Not a copy.</summary>
    internal Tensor Diagonals => diagonal;

    public Tensor Sample(long cls, Tensor eps)
    {
        using var scope = NewDisposeScope();
        var (uk, dk) = Parts(cls, eps);
        var noise = eps.narrow(1, 0, Rank).matmul(uk.t()) + eps.narrow(1, Rank, Features) * dk.sqrt();
        return noise.MoveToOuterDisposeScope();
    }

    public Tensor Apply(long cls, Tensor g)
    {
        using var scope = NewDisposeScope();
        var (uk, dk) = Parts(cls, g);
        return (g.matmul(uk).matmul(uk.t()) + g * dk).MoveToOuterDisposeScope();
    }

    public Tensor Dense(long cls)
    {
        using var scope = NewDisposeScope();
        var uk = u[cls].to(ScalarType.Float64);
        return (uk.matmul(uk.t()) + diagonal[cls].to(ScalarType.Float64).diag()).MoveToOuterDisposeScope();
    }

    (Tensor, Tensor) Parts(long cls, Tensor like) =>
        (u[cls].to(like.dtype).to(like.device), diagonal[cls].to(like.dtype).to(like.device));

    public void Dispose() { u.Dispose(); diagonal.Dispose(); }
}
