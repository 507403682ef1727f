using Attribution.Data;
using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// Insertion and deletion on tokens (Petsiuk et al. 2018, RISE; for text as InputIBA, Zhang et al. 2021, Sec. 4.4.2:
/// "replacing them with a baseline value (... &lt;unk&gt; for tokens)"). Each text's real tokens are ranked by score,
/// most important first (<see cref="TokenRanking"/>). <b>Deletion</b> starts from the text and replaces its top tokens
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
    public const string SubstrateName = "unk";

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

    /// <summary>x values: 0, 1/S, .., 1 (S + 1 values).</summary>
    public double[] Fractions => Enumerable.Range(0, Steps + 1).Select(s => (double)s / Steps).ToArray();

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
        var ranks = TokenRanking.MostImportantFirst(scores, lengths, seed);
        return Perturb(tokens.cpu(), lengths.cpu().to(ScalarType.Int64), ranks, game).MoveToOuterDisposeScope();
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
    public long InputsPerChunk(int batchSize = 1024) => Math.Max(1, batchSize / (Steps + 1));

    /// <summary>
    /// <see cref="Evaluate(TextModel, Tensor, Tensor, Tensor, Tensor, long, Device, int)"/> with ties broken by draws from
    /// <paramref name="tieBreak"/>: texts evaluated a block at a time from one generator (blocks a multiple of
    /// <see cref="InputsPerChunk"/>) get the curves of all of them at once.
    /// </summary>
    public InsertionDeletionScores Evaluate(TextModel model, Tensor tokens, Tensor lengths, Tensor scores, Tensor targets,
                                            Generator tieBreak, Device device, int batchSize = 1024)
    {
        ArgumentNullException.ThrowIfNull(model);
        Check(tokens, lengths, scores);
        if (targets.dim() != 1 || targets.shape[0] != tokens.shape[0])
            throw new ArgumentException($"targets must be [{tokens.shape[0]}]; got [{string.Join(", ", targets.shape)}]");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "at least one text per batch");
        using var scope = NewDisposeScope();
        var x = tokens.cpu();
        var l = lengths.cpu().to(ScalarType.Int64);
        var t = targets.cpu().to(ScalarType.Int64);
        var ranks = TokenRanking.MostImportantFirst(scores, l, tieBreak);
        var fractions = Fractions;
        long b = x.shape[0];
        int stepsPerInput = Steps + 1;
        long inputsPerChunk = InputsPerChunk(batchSize);

        GameCurves Play(PerturbationGame game)
        {
            var curves = new double[b][];
            for (long start = 0; start < b; start += inputsPerChunk)
            {
                using var chunkScope = NewDisposeScope();
                long n = Math.Min(inputsPerChunk, b - start);
                var steps = Perturb(x.narrow(0, start, n), l.narrow(0, start, n), ranks.narrow(0, start, n), game);
                var logits = Training.Logits(model, steps.flatten(0, 1), model.Classify, device, batchSize);
                var p = nn.functional.softmax(logits.to(ScalarType.Float64), 1).view(n, stepsPerInput, -1);
                var chosen = p.gather(2, t.narrow(0, start, n).view(n, 1, 1).expand(n, stepsPerInput, 1)).squeeze(2);
                var values = chosen.contiguous().data<double>().ToArray();
                for (long i = 0; i < n; i++) curves[start + i] = values.AsSpan((int)(i * stepsPerInput), stepsPerInput).ToArray();
            }
            return new GameCurves(fractions, curves, curves.Select(c => Auc.Trapezoid(fractions, c)).ToArray());
        }

        return new InsertionDeletionScores(SubstrateName, Play(PerturbationGame.Deletion), Play(PerturbationGame.Insertion));
    }

    /// <summary>[n, S + 1, T]: step s changes the real tokens whose rank is below round(f_s * length); each step a fresh tensor.</summary>
    Tensor Perturb(Tensor tokens, Tensor lengths, Tensor ranks, PerturbationGame game)
    {
        using var scope = NewDisposeScope();
        long n = tokens.shape[0], t = tokens.shape[1], steps = Steps + 1;
        var fractions = tensor(Fractions, ScalarType.Float64);
        // counts[i, s] = round(f_s * length_i); torch's round is half to even, as StepCounts
        var counts = lengths.to(ScalarType.Float64).view(n, 1).mul(fractions.view(1, steps)).round().to(ScalarType.Int64);
        // chosen[i, s, p]: position p of text i is among its counts[i, s] most important real tokens
        var chosen = ranks.unsqueeze(1).lt(counts.unsqueeze(2));
        var real = ranks.lt(lengths.view(n, 1)).unsqueeze(1);                       // ranks below the length are exactly the real tokens
        var masked = game == PerturbationGame.Deletion ? chosen : real.logical_and(chosen.logical_not());
        var result = tokens.unsqueeze(1).expand(n, steps, t).masked_fill(masked, MaskToken);
        return result.contiguous().MoveToOuterDisposeScope();
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
        TokenRanking.CheckLengths(lengths, tokens.shape[1]);
    }
}
