using Attribution.Runtime;

namespace Attribution.Data.Audio;

/// <summary>Places utterances in fixed-length clips with noise (see <see cref="ClipOptions"/>).</summary>
public static class ClipMixer
{
    /// <summary>
    /// The clip of <paramref name="utterance"/> ([-1, 1], <paramref name="length"/> samples), drawing from a generator
    /// seeded from (options.Seed, <paramref name="key"/>). The SNR compares the utterance's mean power over its own
    /// samples with the noise's over the clip. Values are clipped to [-1, 1] after mixing.
    /// </summary>
    public static float[] Mix(ReadOnlySpan<float> utterance, int length, ClipOptions options, string key)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Check();
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "a clip has at least one sample");
        var rng = new Random((int)(Seeds.Derive(options.Seed, $"clip/{key}") & 0x7FFF_FFFF));
        var clip = new float[length];
        int n = utterance.Length;
        var placed = n <= length ? utterance : utterance.Slice(rng.Next(n - length + 1), length);
        int offset = rng.Next(length - placed.Length + 1);
        placed.CopyTo(clip.AsSpan(offset));
        double snr = options.MinSnrDb + rng.NextDouble() * (options.MaxSnrDb - options.MinSnrDb);
        double colour = rng.NextDouble() * options.MaxNoiseColour;
        double speechPower = 0;
        foreach (var v in placed) speechPower += (double)v * v;
        speechPower /= Math.Max(1, placed.Length);
        var noise = new double[length];
        double state = 0, noisePower = 0;
        for (int t = 0; t < length; t += 2)
        {
            // Box-Muller: two independent standard normals per pair of uniforms.
            double radius = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())), angle = 2 * Math.PI * rng.NextDouble();
            state = colour * state + radius * Math.Cos(angle);
            noise[t] = state;
            noisePower += state * state;
            if (t + 1 == length) break;
            state = colour * state + radius * Math.Sin(angle);
            noise[t + 1] = state;
            noisePower += state * state;
        }
        noisePower /= length;
        double scale = speechPower > 0 && noisePower > 0 ? Math.Sqrt(speechPower / noisePower / Math.Pow(10, snr / 10)) : 0;
        for (int t = 0; t < length; t++) clip[t] = (float)Math.Clamp(clip[t] + scale * noise[t], -1.0, 1.0);
        return clip;
    }

    /// <summary>Clips of every utterance of <paramref name="speech"/> in <paramref name="indices"/>, as an <see cref="AudioDataset"/>.</summary>
    public static AudioDataset Mix(SynthesisedSpeech speech, IReadOnlyList<int> indices, ClipOptions options)
    {
        ArgumentNullException.ThrowIfNull(speech);
        ArgumentNullException.ThrowIfNull(indices);
        ArgumentNullException.ThrowIfNull(options);
        options.Check();
        int length = (int)Math.Round(options.Seconds * speech.SampleRate);
        var data = new float[(long)indices.Count * length];
        Parallel.For(0, indices.Count, new ParallelOptions { MaxDegreeOfParallelism = 2 }, j =>
            Mix(speech.Utterance(indices[j]), length, options, indices[j].ToString()).CopyTo(data, (long)j * length));
        var labels = indices.Select(i => speech.Labels[i]).ToArray();
        var speakers = indices.Select(i => speech.Speakers[speech.SpeakerIndex[i]]).ToArray();
        return AudioDataset.FromArrays(data, length, labels, speech.Words, speech.SampleRate, speakers);
    }
}
