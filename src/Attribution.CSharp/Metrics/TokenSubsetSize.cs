namespace Attribution.Metrics;

/// <summary>
/// How many real tokens one Sensitivity-N mask covers in a text of a given length (<see cref="TokenSensitivityN"/>):
/// a fixed count N (Ancona et al. 2018) or a fixed fraction of the text (InputIBA's IMDB variant, Zhang et al. 2021,
/// Sec. 4.4.1: "perturb a fixed percentage of words in a text"). A text for which the size is below 1 or reaches its
/// length is skipped: with every real token masked all sets are the same and the correlation is undefined.
/// </summary>
public abstract record TokenSubsetSize
{
    private TokenSubsetSize() { }

    /// <summary>The value for a plot's x axis: N, or the fraction.</summary>
    public abstract double X { get; }

    /// <summary>Masked tokens in a text of <paramref name="length"/> real tokens, or null when the text is skipped for this size.</summary>
    public abstract long? For(long length);

    /// <summary>N real tokens in every text; texts with at most N real tokens are skipped.</summary>
    public sealed record Count(int N) : TokenSubsetSize
    {
        public override double X => N;
        public override long? For(long length) => N >= 1 && N < length ? N : null;
    }

    /// <summary>round(Value * length) real tokens (half to even); skipped where that is 0 or the whole text.</summary>
    public sealed record Fraction(double Value) : TokenSubsetSize
    {
        public override double X => Value;
        public override long? For(long length)
        {
            long n = (long)Math.Round(Value * length, MidpointRounding.ToEven);
            return n >= 1 && n < length ? n : null;
        }
    }
}
