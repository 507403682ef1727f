using Attribution.Data;
using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// Insertion and deletion on tokens (Petsiuk et al. 2018, RISE; for text as InputIBA, Zhang et al. 2021, Sec. 4.4.2:
/// "replacing them with a baseline value (... &lt;unk&gt; for tokens)"): <see cref="InsertionDeletion.Play"/> over a
/// <see cref="TokenSpace"/> with a <see cref="StepSchedule.FractionGrid"/>. Each text's real tokens are ranked by score,
/// most important first, ties broken by a seeded random order (<see cref="FeatureRanking.AscendingRanks(Tensor, Tensor, Generator)"/>). <b>Deletion</b> starts from the text and replaces its top tokens
/// by &lt;unk&gt;; <b>insertion</b> starts from the text with every real token at &lt;unk&gt; and reveals its top tokens.
/// Padding is never a candidate and stays padding. At each step the softmax probability of the target is recorded;
/// the score is the trapezoid area under the curve over the fraction of tokens, [0, 1].
/// <para>The x axis is the fraction of each text's own real tokens on a fixed grid 0, 1/S, .., 1 (S = <c>Steps</c>,
/// default 20): step s changes round(s / S * length) tokens (half to even), so texts of different lengths have
/// curves on one grid and their AUCs average. For a text shorter than S, neighbouring steps may change the same
/// number of tokens: its curve is then flat between them.</para>
/// <para>Every step is its own tensor, built from the tokens and a mask: no step aliases another.</para>
/// </summary>
public sealed class TokenInsertionDeletion
{
    /// <summary>The substrate name reported in <see cref="InsertionDeletionScores.Substrate"/>.</summary>
    public const string SubstrateName = TokenSpace.SubstrateName;

    /// <param name="steps">Grid intervals S: fractions 0, 1/S, .., 1 (20: steps of 5%).</param>
    /// <param name="maskToken">Id written over deleted (or not yet inserted) tokens; default &lt;unk&gt;.</param>
    public TokenInsertionDeletion(int steps = 20, long maskToken = Vocabulary.Unknown)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "at least one step");
        Steps = steps;
        MaskToken = maskToken;
    }

    public int Steps { get; }
    public long MaskToken { get; }

    /// <summary>The schedule: the fraction grid of <c>Steps</c> intervals.</summary>
    public StepSchedule.FractionGrid Schedule => new(Steps);

    /// <summary>x values: 0, 1/S, .., 1 (S + 1 values).</summary>
    public double[] Fractions => Schedule.Fractions(0);

    /// <summary>Tokens changed at each step for a text of <paramref name="length"/> real tokens: round(fraction * length), half to even.</summary>
    public long[] StepCounts(long length) => Fractions.Select(f => (long)Math.Round(f * length, MidpointRounding.ToEven)).ToArray();

    /// <summary>
    /// Every step of every text: [B, S + 1, T] int64 on the CPU (step 0 is the text for deletion, all &lt;unk&gt; for
    /// insertion). Tokens [B, T], lengths [B], scores [B, T].
    /// </summary>
    public Tensor Perturbed(Tensor tokens, Tensor lengths, Tensor scores, PerturbationGame game, long seed)
    {
        Check(tokens, lengths, scores);
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)seed, CPU);
        var l = lengths.cpu().to(ScalarType.Int64);
        var real = Methods.TokenScores.PaddingMask(l, tokens.shape[1], CPU).logical_not();
        var ranks = FeatureRanking.AscendingRanks(scores.detach().cpu().neg(), real, generator);   // most important first, padding last
        var counts = Schedule.Counts(l, tokens.shape[1]);
        return TokenSpace.Replace(tokens.cpu(), real, InsertionDeletion.Changed(ranks, counts, game), MaskToken).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Both games for tokens [B, T] (int64, padded), lengths [B], token scores [B, T] (<see cref="Methods.TokenScores.Sum"/>)
    /// and targets [B]. <paramref name="batchSize"/> perturbed texts go through the model at a time, several texts' steps
    /// together, without gradients; results on the CPU.
    /// </summary>
    public InsertionDeletionScores Evaluate(TextModel model, Tensor tokens, Tensor lengths, Tensor scores, Tensor targets,
                                            long seed, Device device, int batchSize = 1024)
    {
        using var generator = new Generator((ulong)seed, CPU);
        return Evaluate(model, tokens, lengths, scores, targets, generator, device, batchSize);
    }

    /// <summary>How many texts' steps go through the model together.</summary>
    public long InputsPerChunk(int batchSize = 1024) => InsertionDeletion.InputsPerChunk(Schedule, 0, batchSize);

    /// <summary>
    /// <see cref="Evaluate(TextModel, Tensor, Tensor, Tensor, Tensor, long, Device, int)"/> with ties broken by draws from
    /// <paramref name="tieBreak"/>: texts evaluated a block at a time from one generator (blocks a multiple of
    /// <see cref="InputsPerChunk"/>) get the curves of all of them at once.
    /// </summary>
    public InsertionDeletionScores Evaluate(TextModel model, Tensor tokens, Tensor lengths, Tensor scores, Tensor targets,
                                            Generator tieBreak, Device device, int batchSize = 1024)
    {
        using var scope = NewDisposeScope();
        return InsertionDeletion.Play(new TokenSpace(model, tokens, lengths, device, MaskToken), scores, targets, Schedule, tieBreak, batchSize);
    }

    static void Check(Tensor tokens, Tensor lengths, Tensor scores)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(lengths);
        ArgumentNullException.ThrowIfNull(scores);
        if (tokens.dim() != 2 || !scores.shape.SequenceEqual(tokens.shape))
            throw new ArgumentException($"tokens [B, T] and scores must have one shape; got tokens [{string.Join(", ", tokens.shape)}], scores [{string.Join(", ", scores.shape)}] (sum embedding maps with TokenScores.Sum first)");
        if (lengths.dim() != 1 || lengths.shape[0] != tokens.shape[0])
            throw new ArgumentException($"lengths must be [B] with B = {tokens.shape[0]}; got [{string.Join(", ", lengths.shape)}]");
        TokenSpace.CheckLengths(lengths, tokens.shape[1]);
    }
}
