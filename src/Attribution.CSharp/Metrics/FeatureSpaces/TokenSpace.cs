using Attribution.Data;
using Attribution.Methods;
using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// The tokens of padded texts [B, T]: D = T slots, the first length[i] of text i real, the rest padding that no metric
/// ranks before a real token or ever changes. A removed token becomes <see cref="MaskToken"/> (&lt;unk&gt;: InputIBA,
/// Zhang et al. 2021, Sec. 4.4.2; Gat et al. 2022, Sec. 5.2). Scores are token scores [B, T] (sum embedding maps with
/// <see cref="TokenScores.Sum"/> first).
/// </summary>
public sealed class TokenSpace : IFeatureSpace
{
    readonly TextModel model;
    readonly Tensor tokens;
    readonly Tensor lengths;
    readonly Tensor real;
    readonly Device device;

    /// <param name="model">The text classifier (its <see cref="TextModel.Classify"/> reads token ids).</param>
    /// <param name="tokens">Token ids [B, T], int64, padded.</param>
    /// <param name="lengths">Real tokens per text [B], each in [0, T].</param>
    /// <param name="maskToken">Id written over removed tokens; default &lt;unk&gt;.</param>
    /// <param name="device">Where the model runs.</param>
    public TokenSpace(TextModel model, Tensor tokens, Tensor lengths, Device device, long maskToken = Vocabulary.Unknown)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(lengths);
        if (tokens.dim() != 2) throw new ArgumentException($"tokens must be [B, T]; got [{string.Join(", ", tokens.shape)}]", nameof(tokens));
        if (lengths.dim() != 1 || lengths.shape[0] != tokens.shape[0])
            throw new ArgumentException($"lengths must be [B] with B = {tokens.shape[0]}; got [{string.Join(", ", lengths.shape)}]", nameof(lengths));
        CheckLengths(lengths, tokens.shape[1]);
        this.model = model;
        this.tokens = tokens.cpu();
        this.lengths = lengths.cpu().to(ScalarType.Int64);
        real = TokenScores.PaddingMask(this.lengths, tokens.shape[1], CPU).logical_not();
        this.device = device;
        MaskToken = maskToken;
    }

    /// <summary>The substrate's name in reports, whatever the mask token's id.</summary>
    public const string SubstrateName = "unk";

    /// <summary>The id written over removed tokens.</summary>
    public long MaskToken { get; }

    /// <summary>Real tokens per text [B] (int64, CPU).</summary>
    public Tensor Lengths => lengths;

    public long Count => tokens.shape[0];
    public long Slots => tokens.shape[1];
    public Tensor? Real => real;
    public string Substrate => SubstrateName;
    public Tensor Inputs => tokens;

    public Tensor Scores(Tensor maps)
    {
        ArgumentNullException.ThrowIfNull(maps);
        if (!maps.shape.SequenceEqual(tokens.shape))
            throw new ArgumentException($"tokens [B, T] and scores must have one shape; got tokens [{string.Join(", ", tokens.shape)}], scores [{string.Join(", ", maps.shape)}] (sum embedding maps with TokenScores.Sum first)", nameof(maps));
        return maps.detach().cpu();
    }

    public Tensor Perturb(Tensor atSubstrate)
    {
        FeatureSpace.CheckMask(this, atSubstrate);
        using var scope = NewDisposeScope();
        return Replace(tokens, real, atSubstrate, MaskToken).view(Count * atSubstrate.shape[1], Slots).MoveToOuterDisposeScope();
    }

    /// <summary>[n, K, T]: tokens [n, T] with the real positions a mask [n or 1, K, T] marks set to <paramref name="maskToken"/>; padding stays padding.</summary>
    internal static Tensor Replace(Tensor tokens, Tensor real, Tensor atSubstrate, long maskToken)
    {
        using var scope = NewDisposeScope();
        long n = tokens.shape[0], k = atSubstrate.shape[1], t = tokens.shape[1];
        var masked = atSubstrate.cpu().logical_and(real.unsqueeze(1));
        return tokens.unsqueeze(1).expand(n, k, t).masked_fill(masked, maskToken).contiguous().MoveToOuterDisposeScope();
    }

    public Tensor Logits(Tensor modelInputs, int batchSize) => Training.Logits(model, modelInputs, model.Classify, device, batchSize);

    public IFeatureSpace Rows(long[] rows) => new TokenSpace(model, FeatureSpace.Take(tokens, rows), FeatureSpace.Take(lengths, rows), device, MaskToken);

    /// <summary>Throws unless every length is in [0, <paramref name="sequenceLength"/>].</summary>
    public static void CheckLengths(Tensor lengths, long sequenceLength)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        using var scope = NewDisposeScope();
        var l = lengths.cpu().to(ScalarType.Int64);
        if (l.numel() == 0) return;
        long min = l.min().item<long>(), max = l.max().item<long>();
        if (min < 0 || max > sequenceLength)
            throw new ArgumentException($"lengths must be in [0, {sequenceLength}] (the sequence length); got {min} .. {max}");
    }
}
