using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// How many features insertion and deletion change after each step, the one thing the games do differently per
/// modality: images change a fixed number of pixels per step (RISE), texts of different lengths a fraction of their own
/// length, so that their curves share one x axis and their AUCs average.
/// </summary>
public abstract record StepSchedule
{
    private StepSchedule() { }

    /// <summary>The curve's x values, 0 to 1, strictly increasing, for inputs of <paramref name="slots"/> feature slots.</summary>
    public abstract double[] Fractions(long slots);

    /// <summary>
    /// Features changed after each step, [n, S] int64 on the CPU, for inputs with <paramref name="realCounts"/> [n]
    /// real features out of <paramref name="slots"/>; S = <see cref="Fractions"/>' length, counts never above the real count.
    /// </summary>
    public abstract Tensor Counts(Tensor realCounts, long slots);

    /// <summary>
    /// <c>PerStep</c> more features per step until all are changed (RISE: 224 pixels per step for 224-wide images).
    /// x = changed / D. Every feature of every input must be real: a fixed count means a different x axis per length.
    /// </summary>
    public sealed record FeaturesPerStep(long PerStep) : StepSchedule
    {
        /// <summary>Features changed after each step, 0 .. <paramref name="slots"/>.</summary>
        public long[] StepCounts(long slots)
        {
            if (PerStep < 1) throw new ArgumentOutOfRangeException(nameof(PerStep), PerStep, "at least one feature per step");
            long steps = (slots + PerStep - 1) / PerStep;
            return Enumerable.Range(0, (int)steps + 1).Select(s => Math.Min(s * PerStep, slots)).ToArray();
        }

        public override double[] Fractions(long slots)
        {
            var counts = StepCounts(slots);
            double all = counts[^1];
            return counts.Select(c => c / all).ToArray();
        }

        public override Tensor Counts(Tensor realCounts, long slots)
        {
            ArgumentNullException.ThrowIfNull(realCounts);
            using var scope = NewDisposeScope();
            var r = realCounts.cpu().to(ScalarType.Int64);
            if (r.numel() > 0 && !r.eq(slots).all().item<bool>())
                throw new ArgumentException($"a fixed number of features per step needs every one of the {slots} slots real in every input; use FractionGrid for inputs of different lengths", nameof(realCounts));
            var counts = tensor(StepCounts(slots));
            return counts.unsqueeze(0).expand(r.shape[0], counts.shape[0]).contiguous().MoveToOuterDisposeScope();
        }
    }

    /// <summary>
    /// x on the grid 0, 1/S, .., 1 (S = <c>Steps</c>); step s changes round(s / S * real count) features of each input
    /// (half to even). An input with fewer real features than S changes the same count on neighbouring steps: its
    /// curve is flat between them.
    /// </summary>
    public sealed record FractionGrid(int Steps) : StepSchedule
    {
        public override double[] Fractions(long slots)
        {
            if (Steps < 1) throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "at least one step");
            return Enumerable.Range(0, Steps + 1).Select(s => (double)s / Steps).ToArray();
        }

        public override Tensor Counts(Tensor realCounts, long slots)
        {
            ArgumentNullException.ThrowIfNull(realCounts);
            using var scope = NewDisposeScope();
            var fractions = tensor(Fractions(slots), ScalarType.Float64);
            long n = realCounts.shape[0];
            // torch's round is half to even, as Math.Round's default
            return realCounts.cpu().to(ScalarType.Float64).view(n, 1).mul(fractions.view(1, -1)).round().to(ScalarType.Int64).MoveToOuterDisposeScope();
        }
    }
}
