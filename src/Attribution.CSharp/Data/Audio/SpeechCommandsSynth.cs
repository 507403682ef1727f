using System.Security.Cryptography;
using System.Text;
using Attribution.Models;
using Attribution.Runtime;

namespace Attribution.Data.Audio;

/// <summary>
/// A synthetic stand-in for Google Speech Commands v2 (Warden 2018), made offline with espeak-ng: the 35 words,
/// each spoken <see cref="SpeechSynthesisOptions.UtterancesPerWord"/> times by seeded random speakers (voice +
/// variant), speeds, pitches and amplitudes; resampled to <see cref="SpeechSynthesisOptions.SampleRate"/> with
/// <see cref="SincResampler"/> and trimmed of silence. The raw utterances are cached (see <see cref="Synthesise"/>);
/// <see cref="ClipMixer"/> then places each in a 1 s clip with noise.
/// </summary>
public static class SpeechCommandsSynth
{
    /// <summary>Samples quieter than this fraction of an utterance's peak are silence at its start and end.</summary>
    public const double SilenceFraction = 0.01;

    /// <summary>Silence kept before and after the trimmed utterance, in seconds.</summary>
    public const double TrimMargin = 0.005;

    /// <summary>
    /// The raw utterances, from <paramref name="cacheFolder"/> when a store for the same settings (and espeak-ng
    /// version) is there, otherwise synthesised with <paramref name="parallelism"/> espeak-ng processes and stored
    /// atomically. The raw utterances are cached rather than the final clips because the processes are the slow
    /// part: clip placement and noise take well under a second for thousands of clips, so their options (SNR,
    /// clip length, seed) can change without synthesising again.
    /// </summary>
    /// <exception cref="DataNotFoundException">espeak-ng is not installed (<c>sudo apt-get install espeak-ng</c>).</exception>
    public static SynthesisedSpeech Synthesise(string cacheFolder, SpeechSynthesisOptions? options = null, Espeak? espeak = null,
                                               int parallelism = 2, Progress? progress = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cacheFolder);
        options ??= new SpeechSynthesisOptions();
        options.Check();
        espeak ??= new Espeak();
        var key = CacheKey(options, espeak.Version());
        var path = CachePath(cacheFolder, key);
        var cached = SynthesisedSpeech.TryLoad(path, key);
        if (cached is not null)
        {
            progress?.Invoke(cached.Count, cached.Count, "synthesised speech from the cache");
            return cached;
        }
        var speakers = options.Speakers;
        var speakerIndex = speakers.Select((s, i) => (s, i)).ToDictionary(p => p.s, p => p.i);
        var testSpeakers = TestSpeakers(options);
        var plan = Plan(options);
        var waves = espeak.SpeakAll(plan.Select(p => p.Settings).ToList(), parallelism,
            then: w => Trim(SincResampler.Resample(w, options.SampleRate)),
            progress: progress is null ? null : (done, total) => { if (done % 50 == 0 || done == total) progress(done, total, "espeak-ng"); });
        var offsets = new long[plan.Count + 1];
        for (int i = 0; i < plan.Count; i++) offsets[i + 1] = offsets[i] + waves[i].Samples.Length;
        var samples = new float[offsets[^1]];
        for (int i = 0; i < plan.Count; i++) waves[i].Samples.CopyTo(samples, offsets[i]);
        var speech = new SynthesisedSpeech(samples, offsets, plan.Select(p => (long)p.Label).ToArray(),
            plan.Select(p => speakerIndex[p.Settings.Voice]).ToArray(), options.WordList, speakers, testSpeakers, options.SampleRate);
        speech.Save(path, key);
        return speech;
    }

    /// <summary>
    /// Train and test clips: the utterances of training speakers and of held-out speakers (<see cref="TestSpeakers"/>),
    /// each placed in a clip with noise (<see cref="ClipMixer"/>). Synthesises or reads the cache as <see cref="Synthesise"/> does.
    /// </summary>
    public static (AudioDataset Train, AudioDataset Test) Load(string cacheFolder, SpeechSynthesisOptions? options = null, ClipOptions? clips = null,
                                                               Espeak? espeak = null, int parallelism = 2, Progress? progress = null)
    {
        var speech = Synthesise(cacheFolder, options, espeak, parallelism, progress);
        return Split(speech, clips ?? new ClipOptions());
    }

    /// <summary>The clips of <paramref name="speech"/> split by speaker: (train, test).</summary>
    public static (AudioDataset Train, AudioDataset Test) Split(SynthesisedSpeech speech, ClipOptions clips)
    {
        ArgumentNullException.ThrowIfNull(speech);
        var all = Enumerable.Range(0, speech.Count);
        var train = ClipMixer.Mix(speech, all.Where(i => !speech.IsTest(i)).ToList(), clips);
        try
        {
            return (train, ClipMixer.Mix(speech, all.Where(speech.IsTest).ToList(), clips));
        }
        catch
        {
            train.Dispose();
            throw;
        }
    }

    /// <summary>One planned utterance: its label and how it is spoken.</summary>
    public sealed record PlannedUtterance(int Label, SpeechSettings Settings);

    /// <summary>
    /// Every utterance to synthesise, word by word: utterance i of word w draws its speaker, speed, pitch and
    /// amplitude from a generator seeded from (Seed, w, i), so the plan does not depend on the order of work.
    /// </summary>
    public static IReadOnlyList<PlannedUtterance> Plan(SpeechSynthesisOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var speakers = options.Speakers;
        var plan = new List<PlannedUtterance>();
        for (int label = 0; label < options.WordList.Count; label++)
        {
            var word = options.WordList[label];
            for (int i = 0; i < options.UtterancesPerWord; i++)
            {
                var rng = Random(options.Seed, $"utterance/{word}/{i}");
                var speaker = speakers[rng.Next(speakers.Count)];
                int wpm = rng.Next(options.MinWordsPerMinute, options.MaxWordsPerMinute + 1);
                int pitch = rng.Next(options.MinPitch, options.MaxPitch + 1);
                int amplitude = rng.Next(options.MinAmplitude, options.MaxAmplitude + 1);
                plan.Add(new PlannedUtterance(label, new SpeechSettings(word, speaker, wpm, pitch, amplitude)));
            }
        }
        return plan;
    }

    /// <summary>The held-out speakers: a seeded shuffle of all speakers, the first round(fraction * count) of it (at least one).</summary>
    public static IReadOnlySet<string> TestSpeakers(SpeechSynthesisOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var speakers = options.Speakers.ToArray();
        Random(options.Seed, "speaker-split").Shuffle(speakers);
        int count = Math.Clamp((int)Math.Round(options.TestSpeakerFraction * speakers.Length), 1, speakers.Length - 1);
        return speakers.Take(count).ToHashSet();
    }

    /// <summary>The utterance without the silence espeak-ng puts around it (keeping <see cref="TrimMargin"/>).</summary>
    public static Waveform Trim(Waveform wave)
    {
        ArgumentNullException.ThrowIfNull(wave);
        var x = wave.Samples;
        float peak = x.Length == 0 ? 0 : x.Max(Math.Abs);
        if (peak == 0) return wave;
        float threshold = (float)(SilenceFraction * peak);
        int first = Array.FindIndex(x, v => Math.Abs(v) >= threshold), last = Array.FindLastIndex(x, v => Math.Abs(v) >= threshold);
        int margin = (int)Math.Round(TrimMargin * wave.SampleRate);
        first = Math.Max(0, first - margin);
        last = Math.Min(x.Length - 1, last + margin);
        return new Waveform(x[first..(last + 1)], wave.SampleRate);
    }

    /// <summary>The text hashed into the cache file name: the options, the espeak-ng version and the signal processing.</summary>
    public static string CacheKey(SpeechSynthesisOptions options, string espeakVersion) =>
        $"speech-commands-synth/v1|{options.Key()}|espeak={espeakVersion}|resampler=kaiser-sinc(rolloff 0.9, 32 zero crossings, beta 8)|trim={SilenceFraction},{TrimMargin}";

    static string CachePath(string folder, string key) =>
        Path.Combine(folder, $"speech-commands-synth-{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16].ToLowerInvariant()}.safetensors");

    static Random Random(long seed, string unit) => new((int)(Seeds.Derive(seed, unit) & 0x7FFF_FFFF));
}
