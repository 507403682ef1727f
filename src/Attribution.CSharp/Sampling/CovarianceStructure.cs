namespace Attribution.Sampling;

/// <summary>
/// How a class covariance over the features of a [C, H, W] input is represented (D = C*H*W, P = H*W). The
/// full matrix is D x D floats: 10 GB for one 224x224 channel, 90 GB for three. The structures trade fidelity
/// for memory (<see cref="CovarianceFidelity"/> measures both):
/// <list type="bullet">
/// <item><see cref="SharedAcrossChannels"/>: one P x P matrix for every channel, none between channels
/// (Functional Information, App. B, and the behaviour of <see cref="ClassCovariance"/>).</item>
/// <item><see cref="PerChannel"/>: a P x P matrix per channel, none between channels (C P^2 floats).</item>
/// <item><see cref="Full"/>: the D x D matrix, channels included (D^2 floats).</item>
/// <item><see cref="LowRankPlusDiagonal"/>: U U^T + diag(d), U [D, r] from the top r principal directions,
/// d the residual variances (r D + D floats); sampled as U eps1 + sqrt(d) eps2 without forming D x D.</item>
/// </list>
/// </summary>
public abstract record CovarianceStructure
{
    CovarianceStructure() { }

    /// <summary>Stable snake_case name, for reports.</summary>
    public abstract string Name { get; }

    /// <summary>Floats one class's model holds for inputs [C, H, W] (the Cholesky factor for the dense structures; U and d for low rank).</summary>
    public abstract long Floats(long channels, long height, long width);

    /// <summary><see cref="Floats"/> times 4 (models are stored in float32).</summary>
    public long Bytes(long channels, long height, long width) => 4 * Floats(channels, height, width);

    public sealed record SharedAcrossChannels : CovarianceStructure
    {
        public override string Name => "shared_across_channels";
        public override long Floats(long channels, long height, long width) => height * width * height * width;
    }

    public sealed record PerChannel : CovarianceStructure
    {
        public override string Name => "per_channel";
        public override long Floats(long channels, long height, long width) => channels * height * width * height * width;
    }

    public sealed record Full : CovarianceStructure
    {
        public override string Name => "full";
        public override long Floats(long channels, long height, long width) { long d = channels * height * width; return d * d; }
    }

    /// <param name="Rank">r, the number of principal directions kept (1..D).</param>
    public sealed record LowRankPlusDiagonal(int Rank) : CovarianceStructure
    {
        public override string Name => $"low_rank_plus_diagonal_{Rank}";
        public override long Floats(long channels, long height, long width) { long d = channels * height * width; return Rank * d + d; }
    }
}
