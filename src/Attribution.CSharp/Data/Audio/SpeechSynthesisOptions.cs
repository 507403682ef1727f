using System.Globalization;

namespace Attribution.Data.Audio;

/// <summary>
/// What to synthesise for the Speech Commands stand-in: how many utterances of each word, and the ranges the
/// per-utterance voice, speed, pitch and amplitude are drawn from (uniformly, with a generator seeded from
/// (Seed, word, index)). A speaker is a (voice, variant) pair such as <c>en-gb-scotland+f2</c>; the speakers
/// are split into train and test before any utterance is drawn, so no test speaker is heard in training.
/// Every field is part of the synthesis cache key (<see cref="Key"/>).
/// </summary>
public sealed record SpeechSynthesisOptions(
    int UtterancesPerWord = 100,
    long Seed = 0,
    int SampleRate = 16000,
    int MinWordsPerMinute = 120, int MaxWordsPerMinute = 220,
    int MinPitch = 20, int MaxPitch = 80,
    int MinAmplitude = 60, int MaxAmplitude = 160,
    double TestSpeakerFraction = 0.2,
    IReadOnlyList<string>? Words = null,
    IReadOnlyList<string>? Voices = null,
    IReadOnlyList<string>? Variants = null)
{
    /// <summary>The 35 words of Google Speech Commands v2 (Warden 2018), in the label order used here (alphabetical).</summary>
    public static readonly IReadOnlyList<string> SpeechCommandsWords =
    [
        "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go", "happy",
        "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven", "sheila", "six", "stop",
        "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
    ];

    /// <summary>English espeak-ng voices that need no MBROLA data (accents of Britain, America, the Caribbean).</summary>
    public static readonly IReadOnlyList<string> EnglishVoices =
        ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"];

    /// <summary>espeak-ng voice variants: seven male (m1-m7) and five female (f1-f5) timbres.</summary>
    public static readonly IReadOnlyList<string> VoiceVariants = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"];

    public IReadOnlyList<string> WordList => Words ?? SpeechCommandsWords;
    public IReadOnlyList<string> VoiceList => Voices ?? EnglishVoices;
    public IReadOnlyList<string> VariantList => Variants ?? VoiceVariants;

    /// <summary>Every (voice, variant) pair as espeak-ng's <c>voice+variant</c>.</summary>
    public IReadOnlyList<string> Speakers => VoiceList.SelectMany(v => VariantList.Select(x => $"{v}+{x}")).ToList();

    /// <exception cref="ArgumentException">A count or range is empty or outside what espeak-ng accepts.</exception>
    public void Check()
    {
        var errors = new List<string>();
        if (UtterancesPerWord < 1) errors.Add($"UtterancesPerWord must be >= 1 (got {UtterancesPerWord})");
        if (SampleRate < 1000) errors.Add($"SampleRate must be >= 1000 Hz (got {SampleRate})");
        if (MinWordsPerMinute < 80 || MaxWordsPerMinute > 450 || MinWordsPerMinute > MaxWordsPerMinute)
            errors.Add($"words per minute must satisfy 80 <= min <= max <= 450 (got {MinWordsPerMinute}..{MaxWordsPerMinute})");
        if (MinPitch < 0 || MaxPitch > 99 || MinPitch > MaxPitch) errors.Add($"pitch must satisfy 0 <= min <= max <= 99 (got {MinPitch}..{MaxPitch})");
        if (MinAmplitude < 1 || MaxAmplitude > 200 || MinAmplitude > MaxAmplitude)
            errors.Add($"amplitude must satisfy 1 <= min <= max <= 200 (got {MinAmplitude}..{MaxAmplitude})");
        if (!(TestSpeakerFraction > 0 && TestSpeakerFraction < 1)) errors.Add($"TestSpeakerFraction must be in (0, 1) (got {TestSpeakerFraction})");
        if (WordList.Count < 1 || WordList.Any(w => string.IsNullOrWhiteSpace(w) || w.StartsWith('-'))) errors.Add("Words must be non-empty and none may be blank or start with '-'");
        if (WordList.Distinct().Count() != WordList.Count) errors.Add("Words must be distinct");
        if (VoiceList.Count < 1 || VariantList.Count < 1) errors.Add("at least one voice and one variant are needed");
        if (Speakers.Count < 2) errors.Add("at least two speakers (voice x variant) are needed for a train/test split");
        if (errors.Count > 0) throw new ArgumentException("SpeechSynthesisOptions: " + string.Join("; ", errors));
    }

    /// <summary>A canonical text of every field (lists spelled out), hashed into the cache key.</summary>
    public string Key() => string.Join("|",
        $"n={UtterancesPerWord}", $"seed={Seed}", $"rate={SampleRate}", $"wpm={MinWordsPerMinute}..{MaxWordsPerMinute}",
        $"pitch={MinPitch}..{MaxPitch}", $"amp={MinAmplitude}..{MaxAmplitude}",
        $"test={TestSpeakerFraction.ToString("R", CultureInfo.InvariantCulture)}",
        $"words={string.Join(",", WordList)}", $"voices={string.Join(",", VoiceList)}", $"variants={string.Join(",", VariantList)}");
}
