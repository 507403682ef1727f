using System.Globalization;

namespace Attribution.Data.Audio;

/// <summary>
/// How an utterance becomes a fixed-length clip (as Speech Commands' 1 s recordings): placed at a uniform
/// random offset (a random window of it when it is longer than the clip), plus coloured noise at a signal-to-noise
/// ratio drawn uniformly from [MinSnrDb, MaxSnrDb]. The noise is AR(1), n[t] = a n[t-1] + e[t] with Gaussian e
/// and a drawn uniformly from [0, MaxNoiseColour]: a = 0 is white, a near 1 is red (most power at low frequencies).
/// Clip i draws from a generator seeded from (Seed, i).
/// </summary>
public sealed record ClipOptions(double Seconds = 1.0, double MinSnrDb = 5, double MaxSnrDb = 30, double MaxNoiseColour = 0.95, long Seed = 0)
{
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Check()
    {
        if (!(Seconds > 0)) throw new ArgumentException($"ClipOptions: Seconds must be > 0 (got {Seconds})");
        if (!(MinSnrDb <= MaxSnrDb)) throw new ArgumentException($"ClipOptions: MinSnrDb must be <= MaxSnrDb (got {MinSnrDb}..{MaxSnrDb})");
        if (!(MaxNoiseColour >= 0 && MaxNoiseColour < 1)) throw new ArgumentException($"ClipOptions: MaxNoiseColour must be in [0, 1) (got {MaxNoiseColour})");
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Seconds} s clips, random offset, AR(1) noise a in [0, {MaxNoiseColour}] at SNR {MinSnrDb}..{MaxSnrDb} dB, seed {Seed}");
}
