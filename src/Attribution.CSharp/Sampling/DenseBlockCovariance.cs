using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// A block-diagonal covariance with dense blocks, kept as Cholesky factors L (float32): one block of D x D
/// (<see cref="CovarianceStructure.Full"/>), one P x P block per channel
/// (<see cref="CovarianceStructure.PerChannel"/>), or one P x P block repeated for every channel
/// (<see cref="CovarianceStructure.SharedAcrossChannels"/>, the factors of a <see cref="ClassCovariance"/>).
/// Noise is eps L^T per block. Sigma g is one product with the stored blocks Sigma = L L^T (the class covariance's own
/// matrix when shared, formed once from the factors otherwise): half the work of L (L^T g), for twice the memory.
/// </summary>
public sealed class DenseBlockCovariance : ICovarianceModel
{
    readonly Tensor factors;       // shared: [K, P, P]; otherwise [K, B, n, n]
    readonly Tensor sigmas;        // L L^T, shaped as the factors
    readonly bool ownsSigmas;
    readonly bool shared;
    readonly IDisposable? owner;
    readonly long blocks, blockSize;

    internal DenseBlockCovariance(Tensor factors, bool shared, CovarianceStructure structure, double[] jitters, long channels, long height, long width,
                                  IDisposable? owner, Tensor? sigmas = null)
    {
        this.factors = factors; this.shared = shared; this.owner = owner;
        ownsSigmas = sigmas is null;
        if (sigmas is null)
        {
            using var scope = NewDisposeScope();
            var l = factors.to(ScalarType.Float64);
            // detached, not moved out: the caller's scope (the estimator's) ends long before this model does
            sigmas = l.matmul(l.transpose(-2, -1)).to(ScalarType.Float32).DetachFromDisposeScope();
        }
        this.sigmas = sigmas;
        Structure = structure; Jitters = jitters; Channels = channels; Height = height; Width = width;
        blockSize = shared ? factors.shape[1] : factors.shape[2];
        blocks = Features / blockSize;
    }

    internal static DenseBlockCovariance Shared(ClassCovariance covariance, bool owned) =>
        new(covariance.Factors, shared: true, new CovarianceStructure.SharedAcrossChannels(), covariance.Jitters.ToArray(),
            covariance.Channels, covariance.Height, covariance.Width, owned ? covariance : null, covariance.Covariances);

    public CovarianceStructure Structure { get; }
    public long Classes => factors.shape[0];
    public long Channels { get; }
    public long Height { get; }
    public long Width { get; }
    public long Features => Channels * Height * Width;
    public long NoiseDimension => Features;
    public long FloatsPerClass => Structure.Floats(Channels, Height, Width);
    public IReadOnlyList<double> Jitters { get; }

    /// <summary>
    /// The lower Cholesky factors L (float32, L L^T = the jittered block): [K, P, P] when one block is shared by every
    /// channel, otherwise [K, B, n, n] (B blocks of n features: one of D for full, one of P per channel). Not a copy.
    /// </summary>
    public Tensor Factors => factors;

    /// <summary>The blocks L L^T as held (float32, shaped as <see cref="Factors"/>), the matrices <see cref="Apply"/> multiplies by. Not a copy.</summary>
    internal Tensor Sigmas => sigmas;

    public Tensor Sample(long cls, Tensor eps)
    {
        using var scope = NewDisposeScope();
        long n = eps.shape[0];
        var l = Factor(cls, eps);
        // shared: [n, C, P] x L^T, the draw of the original covariance Gaussian; otherwise one matmul per block, [B, n, size]
        var noise = shared ? eps.view(n, blocks, blockSize).matmul(l.t())
                           : eps.view(n, blocks, blockSize).transpose(0, 1).matmul(l.transpose(1, 2)).transpose(0, 1);
        return noise.reshape(n, Features).MoveToOuterDisposeScope();
    }

    public Tensor Apply(long cls, Tensor g)
    {
        using var scope = NewDisposeScope();
        long m = g.shape[0];
        var sigma = sigmas[cls].to(g.dtype).to(g.device);
        // a row r times Sigma is (Sigma r^T)^T, Sigma being symmetric
        var result = shared ? g.reshape(m, blocks, blockSize).matmul(sigma)
                            : g.reshape(m, blocks, blockSize).transpose(0, 1).matmul(sigma).transpose(0, 1);
        return result.reshape(m, Features).MoveToOuterDisposeScope();
    }

    public Tensor Dense(long cls)
    {
        using var scope = NewDisposeScope();
        var l = factors[cls].to(ScalarType.Float64);
        var perBlock = shared ? l.matmul(l.t()).unsqueeze(0).expand(blocks, blockSize, blockSize) : l.matmul(l.transpose(1, 2));
        return block_diag(Enumerable.Range(0, (int)blocks).Select(b => perBlock[b]).ToArray()).MoveToOuterDisposeScope();
    }

    Tensor Factor(long cls, Tensor like) => factors[cls].to(like.dtype).to(like.device);

    public void Dispose()
    {
        if (ownsSigmas) sigmas.Dispose();
        if (owner is not null) owner.Dispose();
        else if (!shared) factors.Dispose();
    }
}
