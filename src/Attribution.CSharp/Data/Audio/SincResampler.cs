namespace Attribution.Data.Audio;

/// <summary>
/// Band-limited resampling by a rational factor with a Kaiser-windowed sinc low-pass (polyphase form).
/// Output sample j sits at input time j * from / to; it is the sum of the input samples within
/// <see cref="HalfWidth"/> of that time, weighted by h(d) = 2 fc sinc(2 fc d) w(d / HalfWidth), where d is the
/// distance in input samples, w the Kaiser window and fc the cut-off in cycles per input sample.
/// </summary>
/// <remarks>
/// The cut-off is <see cref="Rolloff"/> times the lower of the two Nyquist frequencies, so that the transition
/// band (width about (A - 8) / (2.285 * 2 pi * taps) cycles per sample for a stop-band attenuation of A dB)
/// ends below the new Nyquist frequency: with the defaults, 22050 -> 16000 Hz keeps 0-6.6 kHz flat and
/// attenuates 8 kHz and above by about 80 dB, so nothing above the new Nyquist folds back into the band.
/// Each phase's taps are scaled to sum to 1, which makes the gain at 0 Hz exactly 1.
/// Samples outside the signal count as zero.
/// </remarks>
public sealed class SincResampler
{
    /// <summary>Cut-off as a fraction of the lower Nyquist frequency.</summary>
    public double Rolloff { get; }

    /// <summary>Zero crossings of the sinc on each side of the centre; sets the filter length.</summary>
    public int ZeroCrossings { get; }

    /// <summary>Kaiser window shape; 8 gives about 80 dB of stop-band attenuation.</summary>
    public double Beta { get; }

    public int From { get; }
    public int To { get; }

    /// <summary>Half-length of the filter in input samples.</summary>
    public int HalfWidth { get; }

    readonly int up, down;          // to / gcd, from / gcd
    readonly float[][] phases;      // phases[p][k]: weight of input sample base - HalfWidth + 1 + k for fraction p / up

    public SincResampler(int from, int to, double rolloff = 0.9, int zeroCrossings = 32, double beta = 8.0)
    {
        if (from <= 0 || to <= 0) throw new ArgumentOutOfRangeException(nameof(from), $"sample rates must be positive; got {from} -> {to}");
        if (!(rolloff > 0 && rolloff <= 1)) throw new ArgumentOutOfRangeException(nameof(rolloff), rolloff, "rolloff must be in (0, 1]");
        if (zeroCrossings < 1) throw new ArgumentOutOfRangeException(nameof(zeroCrossings), zeroCrossings, "at least one zero crossing");
        From = from; To = to; Rolloff = rolloff; ZeroCrossings = zeroCrossings; Beta = beta;
        int g = Gcd(from, to);
        up = to / g; down = from / g;
        double cutoff = 0.5 * rolloff * Math.Min(1.0, (double)to / from);   // cycles per input sample
        HalfWidth = (int)Math.Ceiling(zeroCrossings / (2 * cutoff));
        phases = new float[up][];
        double i0Beta = BesselI0(beta);
        for (int p = 0; p < up; p++)
        {
            var taps = new double[2 * HalfWidth];
            double fraction = (double)p / up, sum = 0;
            for (int k = 0; k < taps.Length; k++)
            {
                double d = k - HalfWidth + 1 - fraction;        // input sample minus output time
                double r = d / HalfWidth;
                double window = Math.Abs(r) >= 1 ? 0 : BesselI0(beta * Math.Sqrt(1 - r * r)) / i0Beta;
                double x = 2 * cutoff * d;
                double sinc = x == 0 ? 1 : Math.Sin(Math.PI * x) / (Math.PI * x);
                taps[k] = 2 * cutoff * sinc * window;
                sum += taps[k];
            }
            phases[p] = taps.Select(t => (float)(t / sum)).ToArray();
        }
    }

    /// <summary>Number of output samples for <paramref name="inputLength"/> input samples: floor(n * to / from).</summary>
    public long OutputLength(long inputLength) => inputLength * up / down;

    /// <summary>The signal at the new rate.</summary>
    public float[] Resample(ReadOnlySpan<float> input)
    {
        if (up == down) return input.ToArray();
        var output = new float[OutputLength(input.Length)];
        for (long j = 0; j < output.Length; j++)
        {
            long position = j * down;
            long first = position / up - HalfWidth + 1;
            var taps = phases[(int)(position % up)];
            double acc = 0;
            int k0 = (int)Math.Max(0, -first), k1 = (int)Math.Min(taps.Length, input.Length - first);
            for (int k = k0; k < k1; k++) acc += taps[k] * input[(int)(first + k)];
            output[j] = (float)acc;
        }
        return output;
    }

    /// <summary>Resamples <paramref name="wave"/> to <paramref name="to"/> Hz with default filter settings.</summary>
    public static Waveform Resample(Waveform wave, int to)
    {
        ArgumentNullException.ThrowIfNull(wave);
        return wave.SampleRate == to ? wave : new Waveform(new SincResampler(wave.SampleRate, to).Resample(wave.Samples), to);
    }

    static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);

    /// <summary>Modified Bessel function of the first kind, order 0, by its power series (converges for all x).</summary>
    static double BesselI0(double x)
    {
        double sum = 1, term = 1, q = x * x / 4;
        for (int k = 1; k < 200 && term > 1e-17 * sum; k++)
        {
            term *= q / ((double)k * k);
            sum += term;
        }
        return sum;
    }
}
