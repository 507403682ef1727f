using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// Builds an <see cref="ICovarianceModel"/> of a chosen <see cref="CovarianceStructure"/>, either estimated from
/// training images (one covariance per class, as <see cref="ClassCovariance.Estimate"/>) or reduced from given
/// full D x D covariances (for tests and <see cref="CovarianceFidelity"/>). Dense structures are factorised with
/// jitter exactly as <see cref="ClassCovariance"/> does.
/// </summary>
public static class CovarianceModels
{
    /// <summary>The shared-across-channels model of an existing <see cref="ClassCovariance"/> (not owned: the caller disposes it).</summary>
    public static ICovarianceModel FromClassCovariance(ClassCovariance covariance) => DenseBlockCovariance.Shared(covariance, owned: false);

    /// <summary>Estimates one covariance per class from images [N, C, H, W] and labels [N] in the given structure.</summary>
    public static ICovarianceModel Estimate(Tensor images, Tensor labels, int classes, CovarianceStructure structure,
                                            double relativeJitter = 1e-5, Device? device = null)
    {
        if (images.shape.Length != 4) throw new ArgumentException($"images must be [N, C, H, W], got [{string.Join(", ", images.shape)}]");
        if (relativeJitter < 0) throw new ArgumentOutOfRangeException(nameof(relativeJitter), relativeJitter, "jitter must be non-negative");
        if (structure is CovarianceStructure.SharedAcrossChannels)
            return DenseBlockCovariance.Shared(ClassCovariance.Estimate(images, labels, classes, relativeJitter, device), owned: true);
        device ??= images.device;
        long c = images.shape[1], h = images.shape[2], w = images.shape[3], p = h * w, d = c * p;
        CheckRank(structure, d);
        using var scope = NewDisposeScope();
        var parts = new List<(Tensor, double)>();
        for (int k = 0; k < classes; k++)
        {
            var rows = images.index_select(0, labels.eq(k).nonzero().squeeze(1)).to(ScalarType.Float64).to(device);
            long n = rows.shape[0];
            if (n < 2) throw new ArgumentException($"class {k} has {n} images: at least 2 are needed to estimate its covariance");
            parts.Add(structure switch
            {
                CovarianceStructure.PerChannel => PerChannelFactors(Centred(rows.reshape(n, c, p).transpose(0, 1)), relativeJitter, k),
                CovarianceStructure.Full => Factor(Covariance(Centred(rows.reshape(n, d))), relativeJitter, k),
                CovarianceStructure.LowRankPlusDiagonal lr => LowRankFromData(Centred(rows.reshape(n, d)), lr.Rank, relativeJitter),
                _ => throw new ArgumentException($"unknown covariance structure {structure}"),
            });
        }
        return Assemble(parts, structure, c, h, w);
    }

    /// <summary>Reduces full covariances [K, D, D] (or one [D, D]), D = C*H*W in (channel, row, column) order, to the structure.</summary>
    public static ICovarianceModel FromFull(Tensor covariances, long channels, long height, long width, CovarianceStructure structure, double relativeJitter = 0.0)
    {
        long p = height * width, d = channels * p;
        if (covariances.shape.Length == 2) covariances = covariances.unsqueeze(0);
        if (covariances.shape.Length != 3 || covariances.shape[1] != d || covariances.shape[2] != d)
            throw new ArgumentException($"covariances must be [K, {d}, {d}], got [{string.Join(", ", covariances.shape)}]");
        if (relativeJitter < 0) throw new ArgumentOutOfRangeException(nameof(relativeJitter), relativeJitter, "jitter must be non-negative");
        CheckRank(structure, d);
        using var scope = NewDisposeScope();
        var sigmas = covariances.to(ScalarType.Float64);
        long classes = sigmas.shape[0];
        // the diagonal blocks Sigma[c, :, c, :] of each class: [K, C, P, P]
        var blocks = sigmas.view(classes, channels, p, channels, p).diagonal(0, 1, 3).permute(0, 3, 1, 2);
        if (structure is CovarianceStructure.SharedAcrossChannels)
        {
            var shared = blocks.mean([1]);
            var cc = ClassCovariance.FromCovariances(shared, channels, height, width, relativeJitter);
            cc.Covariances.MoveToOuterDisposeScope();
            cc.Factors.MoveToOuterDisposeScope();
            return DenseBlockCovariance.Shared(cc, owned: true);
        }
        var parts = new List<(Tensor, double)>();
        for (int k = 0; k < classes; k++)
            parts.Add(structure switch
            {
                CovarianceStructure.PerChannel => PerChannelFactors(blocks[k], relativeJitter, k, blocksGiven: true),
                CovarianceStructure.Full => Factor(sigmas[k], relativeJitter, k),
                CovarianceStructure.LowRankPlusDiagonal lr => LowRankFromCovariance(sigmas[k], lr.Rank, relativeJitter),
                _ => throw new ArgumentException($"unknown covariance structure {structure}"),
            });
        return Assemble(parts, structure, channels, height, width);
    }

    /// <summary>
    /// Cholesky factor of sigma + j I (float64): j starts at <paramref name="relativeJitter"/> times the mean
    /// diagonal (0: none) and is multiplied by 10 until the factorisation succeeds.
    /// </summary>
    internal static (Tensor Jittered, Tensor Factor, double Jitter) JitteredCholesky(Tensor sigma, double relativeJitter, string what)
    {
        double meanDiagonal = sigma.diagonal().mean().item<double>();
        double jitter = relativeJitter * Math.Max(meanDiagonal, 1e-12);
        var identity = eye(sigma.shape[0], dtype: ScalarType.Float64, device: sigma.device);
        for (int attempt = 0; ; attempt++)
        {
            var jittered = jitter > 0 ? sigma + identity * jitter : sigma;
            var (factor, info) = linalg.cholesky_ex(jittered, false);
            if (info.item<int>() == 0) return (jittered, factor, jitter);
            if (attempt > 12) throw new InvalidOperationException($"the covariance of {what} is not positive definite even with jitter {jitter}");
            jitter = Math.Max(jitter * 10, 1e-12 * Math.Max(meanDiagonal, 1e-12));
        }
    }

    static void CheckRank(CovarianceStructure structure, long d)
    {
        if (structure is CovarianceStructure.LowRankPlusDiagonal { Rank: var r } && (r < 1 || r > d))
            throw new ArgumentOutOfRangeException(nameof(structure), r, $"the rank must be between 1 and D = {d}");
    }

    static Tensor Centred(Tensor rows) => rows - rows.mean([-2], keepdim: true);

    /// <summary>Unbiased covariance of centred rows [..., n, D].</summary>
    static Tensor Covariance(Tensor centred) => centred.transpose(-2, -1).matmul(centred) / (centred.shape[^2] - 1);

    static (Tensor, double) Factor(Tensor sigma, double relativeJitter, int k)
    {
        var (_, factor, jitter) = JitteredCholesky(sigma, relativeJitter, $"class {k}");
        return (factor.to(ScalarType.Float32).unsqueeze(0), jitter);
    }

    /// <summary>Factors [C, P, P] of each channel's covariance; the class's jitter is the largest over its channels.</summary>
    static (Tensor, double) PerChannelFactors(Tensor perChannel, double relativeJitter, int k, bool blocksGiven = false)
    {
        var sigmas = blocksGiven ? perChannel : Covariance(perChannel);
        var factors = new List<Tensor>();
        double jitter = 0;
        for (long c = 0; c < sigmas.shape[0]; c++)
        {
            var (_, factor, j) = JitteredCholesky(sigmas[c], relativeJitter, $"class {k}, channel {c}");
            factors.Add(factor.to(ScalarType.Float32));
            jitter = Math.Max(jitter, j);
        }
        return (stack(factors), jitter);
    }

    static (Tensor, double) LowRankFromCovariance(Tensor sigma, int rank, double relativeJitter)
    {
        var (values, vectors) = linalg.eigh(sigma);   // ascending
        return LowRankPlusDiagonalCovariance.Parts(values.flip(0), vectors.flip(1), sigma.diagonal(), rank, relativeJitter);
    }

    /// <summary>Principal directions of centred rows [n, D] without a D x D matrix when D is large (thin SVD).</summary>
    static (Tensor, double) LowRankFromData(Tensor centred, int rank, double relativeJitter)
    {
        long n = centred.shape[0], d = centred.shape[1];
        var diagonal = centred.square().sum([0]) / (n - 1);
        if (d <= 4096) return LowRankFromCovariance(Covariance(centred), rank, relativeJitter);
        var (_, s, vh) = linalg.svd(centred, fullMatrices: false);
        return LowRankPlusDiagonalCovariance.Parts(s.square() / (n - 1), vh.t(), diagonal, rank, relativeJitter);
    }

    static ICovarianceModel Assemble(List<(Tensor Part, double Jitter)> parts, CovarianceStructure structure, long c, long h, long w)
    {
        var jitters = parts.Select(x => x.Jitter).ToArray();
        if (structure is CovarianceStructure.LowRankPlusDiagonal lr)
        {
            // each part is [D, r + 1]: U and d side by side
            var packed = stack(parts.Select(x => x.Part).ToList());
            var u = packed.narrow(2, 0, lr.Rank).contiguous().MoveToOuterDisposeScope();
            var diag = packed.select(2, lr.Rank).contiguous().MoveToOuterDisposeScope();
            return new LowRankPlusDiagonalCovariance(u, diag, jitters, lr, c, h, w);
        }
        var factors = stack(parts.Select(x => x.Part).ToList()).MoveToOuterDisposeScope();   // [K, B, n, n]
        return new DenseBlockCovariance(factors, shared: false, structure, jitters, c, h, w, owner: null);
    }
}
