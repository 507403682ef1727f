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
/// NeFLAG, Li et al. 2023, Tables 1-2), written once over an <see cref="IFeatureSpace"/> (<see cref="Play"/>): features
/// are ranked by their score, most important first, ties broken by a seeded random order per input. Deletion sets more
/// features to the substrate at each step; insertion starts from the substrate and reveals them. At each step the
/// probability (softmax of the logits) of the target class is recorded; the score is the trapezoid area under the
/// curve over the fraction of features changed, [0, 1]. Lower deletion and higher insertion AUC are better. How many
/// features a step changes is the <see cref="StepSchedule"/>.
/// <para>An instance is the image metric: pixels (<see cref="PixelSpace"/>), <c>PixelsPerStep</c> per step
/// (<see cref="StepSchedule.FeaturesPerStep"/>; default the image width, RISE's 224 for 224-wide images: one row's
/// worth per step); substrate black (RISE, deletion) or Gaussian blur with sigma 20 (NeFLAG's second round). Texts:
/// <see cref="TokenInsertionDeletion"/>.</para>
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

    /// <summary>The schedule for images <paramref name="width"/> pixels wide: <c>PixelsPerStep</c>, or one row, per step.</summary>
    public StepSchedule.FeaturesPerStep Schedule(long width) => new(PixelsPerStep ?? width);

    /// <summary>Number of pixels changed after each step, 0 .. pixels, for images of <paramref name="height"/> x <paramref name="width"/>.</summary>
    public long[] StepCounts(long height, long width) => Schedule(width).StepCounts(height * width);

    /// <summary>
    /// Every step's perturbed copy of every input: [B, S, C, H, W], S = number of steps + 1 (step 0 is the input
    /// for deletion, the substrate for insertion). Inputs [B, C, H, W]; maps the same shape; substrate the same shape.
    /// </summary>
    public Tensor Perturbed(Tensor inputs, Tensor maps, Tensor substrate, PerturbationGame game, long seed)
    {
        CheckShapes(inputs, maps);
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)seed, CPU);
        var x = inputs.detach().cpu();
        var s = substrate.detach().cpu();
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var ranks = FeatureRanking.AscendingRanks(FeatureRanking.PixelScores(maps).neg(), null, generator);
        var counts = Schedule(w).Counts(full(b, h * w, ScalarType.Int64), h * w);
        long steps = counts.shape[1];
        var changed = Changed(ranks, counts, game).view(b, steps, 1, h, w);                     // at the substrate after step s
        var shape = new[] { b, steps, c, h, w };
        return where(changed, s.unsqueeze(1).expand(shape), x.unsqueeze(1).expand(shape)).contiguous().MoveToOuterDisposeScope();
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
    public long InputsPerChunk(long height, long width, int batchSize = 1024) => InputsPerChunk(Schedule(width), height * width, batchSize);

    /// <summary>
    /// <see cref="Evaluate(nn.Module{Tensor, Tensor}, Tensor, Tensor, Tensor, Substrate, long, Device, int)"/> with ties
    /// broken by draws from <paramref name="tieBreak"/>: a set of inputs evaluated a block at a time from one generator
    /// per substrate (blocks a multiple of <see cref="InputsPerChunk(long, long, int)"/>) gives each input the curves of the whole set at once.
    /// </summary>
    public InsertionDeletionScores Evaluate(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor maps, Tensor targets,
                                            Substrate substrate, Generator tieBreak, Device device, int batchSize = 1024)
    {
        CheckShapes(inputs, maps);
        using var scope = NewDisposeScope();
        var space = new PixelSpace(model, inputs, substrate, device);
        return Play(space, maps, targets, Schedule(inputs.shape[3]), tieBreak, batchSize);
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

    /// <summary>How many inputs' steps go through the model together under <paramref name="schedule"/>.</summary>
    public static long InputsPerChunk(StepSchedule schedule, long slots, int batchSize = 1024)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        return Math.Max(1, batchSize / schedule.Fractions(slots).Length);
    }

    /// <summary>
    /// Both games over <paramref name="space"/>: maps of its inputs (what <see cref="IFeatureSpace.Scores"/> reads),
    /// targets [B], steps by <paramref name="schedule"/>, ties broken by draws from <paramref name="tieBreak"/> (one row
    /// of draws per input, so blocks that are multiples of <see cref="InputsPerChunk(StepSchedule, long, int)"/> give
    /// the curves of the whole set). The steps of several inputs go through the model together, <paramref name="batchSize"/>
    /// model inputs at a time; results on the CPU.
    /// </summary>
    public static InsertionDeletionScores Play(IFeatureSpace space, Tensor maps, Tensor targets, StepSchedule schedule,
                                               Generator tieBreak, int batchSize = 1024)
    {
        ArgumentNullException.ThrowIfNull(space);
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentNullException.ThrowIfNull(tieBreak);
        FeatureSpace.CheckTargets(space, targets);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "at least one input per batch");
        using var scope = NewDisposeScope();
        var ranks = MostImportantFirst(space, maps, tieBreak);
        var t = targets.cpu().to(ScalarType.Int64);
        var counts = schedule.Counts(FeatureSpace.RealCounts(space), space.Slots);               // [B, S]
        var fractions = schedule.Fractions(space.Slots);
        long b = space.Count;
        int stepsPerInput = fractions.Length;
        long inputsPerChunk = InputsPerChunk(schedule, space.Slots, batchSize);

        GameCurves Curves(PerturbationGame game)
        {
            var curves = new double[b][];
            for (long start = 0; start < b; start += inputsPerChunk)
            {
                using var chunkScope = NewDisposeScope();
                long n = Math.Min(inputsPerChunk, b - start);
                // The chunk as a space of its own: a blurred substrate is the blur of the chunk alone (a convolution may
                // round differently for another batch size), and chunks are what stays the same when a set is
                // evaluated a block at a time.
                var chunk = space.Rows(FeatureSpace.Range(start, n));
                var steps = chunk.Perturb(Changed(ranks.narrow(0, start, n), counts.narrow(0, start, n), game));
                var logits = chunk.Logits(steps, batchSize);
                var p = nn.functional.softmax(logits.to(ScalarType.Float64), 1).view(n, stepsPerInput, -1);
                var chosen = p.gather(2, t.narrow(0, start, n).view(n, 1, 1).expand(n, stepsPerInput, 1)).squeeze(2);
                var values = chosen.contiguous().data<double>().ToArray();
                for (long i = 0; i < n; i++) curves[start + i] = values.AsSpan((int)(i * stepsPerInput), stepsPerInput).ToArray();
            }
            return new GameCurves(fractions, curves, curves.Select(c => Auc.Trapezoid(fractions, c)).ToArray());
        }

        return new InsertionDeletionScores(space.Substrate, Curves(PerturbationGame.Deletion), Curves(PerturbationGame.Insertion));
    }

    /// <summary>Ranks [B, D]: 0 = the most important real feature; slots that are not real last.</summary>
    internal static Tensor MostImportantFirst(IFeatureSpace space, Tensor maps, Generator tieBreak)
    {
        using var scope = NewDisposeScope();
        return FeatureRanking.AscendingRanks(space.Scores(maps).neg(), space.Real, tieBreak).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// [n, S, D]: slot d of input i is at the substrate after step s, its rank below counts[i, s] for deletion (the most
    /// important first), not below it for insertion (the most important revealed first).
    /// </summary>
    internal static Tensor Changed(Tensor ranks, Tensor counts, PerturbationGame game)
    {
        using var scope = NewDisposeScope();
        var removed = ranks.unsqueeze(1).lt(counts.unsqueeze(2));
        return (game == PerturbationGame.Deletion ? removed : removed.logical_not()).MoveToOuterDisposeScope();
    }

    static void CheckShapes(Tensor inputs, Tensor maps)
    {
        if (inputs.dim() != 4) throw new ArgumentException($"inputs must be [B, C, H, W]; got [{string.Join(", ", inputs.shape)}]");
        if (!maps.shape.SequenceEqual(inputs.shape))
            throw new ArgumentException($"maps [{string.Join(", ", maps.shape)}] must have the inputs' shape [{string.Join(", ", inputs.shape)}]");
    }
}
