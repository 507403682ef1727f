namespace Attribution.Metrics;

/// <summary>
/// How many real features one Sensitivity-N mask covers in an input with a given number of real features
/// (<see cref="SensitivityN.Correlate"/>): a fixed count N (Ancona et al. 2018) or a fixed fraction of the input
/// (InputIBA's IMDB variant, Zhang et al. 2021, Sec. 4.4.1: "perturb a fixed percentage of words in a text"). An input
/// for which the size is below 1 or reaches its real count is skipped: with every real feature masked all sets are the
/// same and the correlation is undefined.
/// </summary>
public abstract record SubsetSize
{
    private SubsetSize() { }

    /// <summary>The value for a plot's x axis: N, or the fraction.</summary>
    public abstract double X { get; }

    /// <summary>Masked features of an input with <paramref name="length"/> real features (a text's tokens), or null when the input is skipped for this size.</summary>
    public abstract long? For(long length);

    /// <summary>N real features in every input; inputs with at most N real features are skipped.</summary>
    public sealed record Count(int N) : SubsetSize
    {
        public override double X => N;
        public override long? For(long length) => N >= 1 && N < length ? N : null;
    }

    /// <summary>round(Value * length) real features (half to even); skipped where that is 0 or the whole input.</summary>
    public sealed record Fraction(double Value) : SubsetSize
    {
        public override double X => Value;
        public override long? For(long length)
        {
            long n = (long)Math.Round(Value * length, MidpointRounding.ToEven);
            return n >= 1 && n < length ? n : null;
        }
    }
}
