using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>The two games of Petsiuk et al. (2018).</summary>
public enum PerturbationGame
{
    /// <summary>Start from the input, replace its most important pixels by the substrate first.</summary>
    Deletion,
    /// <summary>Start from the substrate, reveal the input's most important pixels first.</summary>
    Insertion,
}

/// <summary>One game's curves: x = fraction of pixels replaced or revealed, y = probability of the target class.</summary>
/// <param name="Fractions">x values, 0 to 1 inclusive, strictly increasing.</param>
/// <param name="Curves">Curves[i][s]: probability of input i's target after step s.</param>
/// <param name="Auc">Per input: trapezoid area under its curve over [0, 1].</param>
public sealed record GameCurves(double[] Fractions, double[][] Curves, double[] Auc)
{
    public double MeanAuc => Auc.Length == 0 ? double.NaN : Auc.Average();

    /// <summary>The curves of blocks of inputs, in order, as one set (a metric read a block at a time).</summary>
    public static GameCurves Concatenate(IReadOnlyList<GameCurves> blocks) =>
        new(blocks[0].Fractions, blocks.SelectMany(b => b.Curves).ToArray(), blocks.SelectMany(b => b.Auc).ToArray());
}

/// <summary>Both games with one substrate. Difference = insertion AUC - deletion AUC (higher is better).</summary>
public sealed record InsertionDeletionScores(string Substrate, GameCurves Deletion, GameCurves Insertion)
{
    public double Difference => Insertion.MeanAuc - Deletion.MeanAuc;

    /// <summary>Both games of blocks of inputs (one substrate), in order, as one set.</summary>
    public static InsertionDeletionScores Concatenate(IReadOnlyList<InsertionDeletionScores> blocks) =>
        new(blocks[0].Substrate, GameCurves.Concatenate(blocks.Select(b => b.Deletion).ToArray()), GameCurves.Concatenate(blocks.Select(b => b.Insertion).ToArray()));
}

/// <summary>The NeFLAG protocol (Li et al. 2023, Sec. 5 and App. A.2): a black and a blurred round, averaged.</summary>
public sealed record AveragedInsertionDeletion(IReadOnlyList<InsertionDeletionScores> Rounds)
{
    public double Deletion => Rounds.Average(r => r.Deletion.MeanAuc);
    public double Insertion => Rounds.Average(r => r.Insertion.MeanAuc);
    public double Difference => Insertion - Deletion;
}

/// <summary>
/// Insertion and deletion (Petsiuk et al. 2018, RISE; as used by InputIBA, Zhang et al. 2021, Sec. 4.4.2, and
/// NeFLAG, Li et al. 2023, Tables 1-2). Pixels are ranked by their attribution (summed over channels), most
/// important first; ties are broken by a seeded random order per input. Deletion replaces
/// <c>PixelsPerStep</c> more pixels by the substrate at each step; insertion starts from the substrate and
/// reveals them. At each step the probability (softmax of the logits) of the target class is recorded; the
/// score is the trapezoid area under the curve over the fraction of pixels, [0, 1]. Lower deletion and
/// higher insertion AUC are better.
/// <para>Defaults: <c>PixelsPerStep</c> = the image width (RISE's 224 for 224-wide images: one row's worth
/// per step); substrate black (RISE, deletion) or Gaussian blur with sigma 20 (NeFLAG's second round).</para>
/// <para>Every step is its own tensor, built from the input, the substrate and a mask: no step aliases another,
/// so the curve is never a step function of a tensor mutated in place.</para>
/// </summary>
public sealed class InsertionDeletion
{
    /// <param name="pixelsPerStep">Pixels replaced (or revealed) per step; null: the image width.</param>
    public InsertionDeletion(int? pixelsPerStep = null)
    {
        if (pixelsPerStep is < 1) throw new ArgumentOutOfRangeException(nameof(pixelsPerStep), pixelsPerStep, "at least one pixel per step");
        PixelsPerStep = pixelsPerStep;
    }

    public int? PixelsPerStep { get; }

    /// <summary>Number of pixels changed after each step, 0 .. pixels, for images of <paramref name="height"/> x <paramref name="width"/>.</summary>
    public long[] StepCounts(long height, long width)
    {
        long pixels = height * width, step = PixelsPerStep ?? width;
        long steps = (pixels + step - 1) / step;
        return Enumerable.Range(0, (int)steps + 1).Select(s => Math.Min(s * step, pixels)).ToArray();
    }

    /// <summary>
    /// Every step's perturbed copy of every input: [B, S, C, H, W], S = number of steps + 1 (step 0 is the input
    /// for deletion, the substrate for insertion). Inputs [B, C, H, W]; maps the same shape; substrate the same shape.
    /// </summary>
    public Tensor Perturbed(Tensor inputs, Tensor maps, Tensor substrate, PerturbationGame game, long seed)
    {
        CheckShapes(inputs, maps);
        using var scope = NewDisposeScope();
        var ranks = FeatureRanking.DescendingRanks(FeatureRanking.PixelScores(maps), seed);
        return Perturb(inputs.detach().cpu(), substrate.detach().cpu(), ranks, game).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Both games with <paramref name="substrate"/> for inputs [B, C, H, W], maps of the same shape and target classes [B].
    /// <paramref name="batchSize"/> perturbed images go through the model at a time (several inputs' steps together).
    /// </summary>
    public InsertionDeletionScores Evaluate(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor maps, Tensor targets,
                                            Substrate substrate, long seed, Device device, int batchSize = 1024)
    {
        using var generator = new Generator((ulong)seed, CPU);
        return Evaluate(model, inputs, maps, targets, substrate, generator, device, batchSize);
    }

    /// <summary>How many inputs' steps go through the model together, for images of <paramref name="height"/> x <paramref name="width"/>.</summary>
    public long InputsPerChunk(long height, long width, int batchSize = 1024) => Math.Max(1, batchSize / StepCounts(height, width).Length);

    /// <summary>
    /// <see cref="Evaluate(nn.Module{Tensor, Tensor}, Tensor, Tensor, Tensor, Substrate, long, Device, int)"/> with ties
    /// broken by draws from <paramref name="tieBreak"/>: a set of inputs evaluated a block at a time from one generator
    /// per substrate (blocks a multiple of <see cref="InputsPerChunk"/>) gives each input the curves of the whole set at once.
    /// </summary>
    public InsertionDeletionScores Evaluate(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor maps, Tensor targets,
                                            Substrate substrate, Generator tieBreak, Device device, int batchSize = 1024)
    {
        CheckShapes(inputs, maps);
        if (targets.dim() != 1 || targets.shape[0] != inputs.shape[0])
            throw new ArgumentException($"targets must be [{inputs.shape[0]}]; got [{string.Join(", ", targets.shape)}]");
        using var scope = NewDisposeScope();
        var x = inputs.detach().cpu();
        var ranks = FeatureRanking.DescendingRanks(FeatureRanking.PixelScores(maps), tieBreak);
        var t = targets.cpu().to(ScalarType.Int64);
        long b = x.shape[0];
        var counts = StepCounts(x.shape[2], x.shape[3]);
        double pixels = counts[^1];
        var fractions = counts.Select(c => c / pixels).ToArray();
        int stepsPerInput = counts.Length;
        long inputsPerChunk = InputsPerChunk(x.shape[2], x.shape[3], batchSize);

        GameCurves Play(PerturbationGame game)
        {
            var curves = new double[b][];
            for (long start = 0; start < b; start += inputsPerChunk)
            {
                using var chunkScope = NewDisposeScope();
                long n = Math.Min(inputsPerChunk, b - start);
                // The substrate of the chunk alone: a blur's convolution may round differently for another batch size,
                // and chunks are what stays the same when a set is evaluated a block at a time.
                var chunk = x.narrow(0, start, n);
                var steps = Perturb(chunk, substrate.Of(chunk), ranks.narrow(0, start, n), game);
                var logits = Training.Logits(model, steps.flatten(0, 1), device, batchSize);
                var p = nn.functional.softmax(logits.to(ScalarType.Float64), 1).view(n, stepsPerInput, -1);
                var chosen = p.gather(2, t.narrow(0, start, n).view(n, 1, 1).expand(n, stepsPerInput, 1)).squeeze(2);
                var values = chosen.contiguous().data<double>().ToArray();
                for (long i = 0; i < n; i++) curves[start + i] = values.AsSpan((int)(i * stepsPerInput), stepsPerInput).ToArray();
            }
            return new GameCurves(fractions, curves, curves.Select(c => Auc.Trapezoid(fractions, c)).ToArray());
        }

        return new InsertionDeletionScores(substrate.Name, Play(PerturbationGame.Deletion), Play(PerturbationGame.Insertion));
    }

    /// <summary>
    /// The NeFLAG protocol: both games with a black substrate, then with a Gaussian blur (sigma 20 by default),
    /// and the averages of the two rounds (Li et al. 2023, Sec. 5: "we report the average performance of two rounds").
    /// </summary>
    public AveragedInsertionDeletion EvaluateBlackAndBlurred(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor maps, Tensor targets,
                                                             long seed, Device device, double blurSigma = 20.0, int batchSize = 1024) =>
        new([
            Evaluate(model, inputs, maps, targets, new Substrate.Black(), seed, device, batchSize),
            Evaluate(model, inputs, maps, targets, new Substrate.Blurred(blurSigma), seed, device, batchSize),
        ]);

    /// <summary>[n, S, C, H, W]: step s changes the pixels whose descending rank is below counts[s]; each step a fresh tensor.</summary>
    Tensor Perturb(Tensor x, Tensor substrate, Tensor ranks, PerturbationGame game)
    {
        using var scope = NewDisposeScope();
        long n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var counts = tensor(StepCounts(h, w));
        long steps = counts.shape[0];
        // changed[i, s, p]: pixel p of input i is at the substrate (deletion) or revealed (insertion) after step s
        var changed = ranks.unsqueeze(1).lt(counts.view(1, steps, 1)).view(n, steps, 1, h, w);
        var xs = x.unsqueeze(1).expand(n, steps, c, h, w);
        var ss = substrate.unsqueeze(1).expand(n, steps, c, h, w);
        var result = game == PerturbationGame.Deletion ? where(changed, ss, xs) : where(changed, xs, ss);
        return result.contiguous().MoveToOuterDisposeScope();
    }

    static void CheckShapes(Tensor inputs, Tensor maps)
    {
        if (inputs.dim() != 4) throw new ArgumentException($"inputs must be [B, C, H, W]; got [{string.Join(", ", inputs.shape)}]");
        if (!maps.shape.SequenceEqual(inputs.shape))
            throw new ArgumentException($"maps [{string.Join(", ", maps.shape)}] must have the inputs' shape [{string.Join(", ", inputs.shape)}]");
    }
}
