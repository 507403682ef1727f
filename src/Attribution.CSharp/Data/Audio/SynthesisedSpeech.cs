using Attribution.IO;
using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Data.Audio;

/// <summary>
/// The raw synthesised utterances, trimmed of leading and trailing silence and resampled, before they are
/// placed in clips and mixed with noise: one flat sample array with offsets, a label and a speaker per
/// utterance, and which speakers are held out for testing. Plain managed arrays; nothing to dispose.
/// </summary>
public sealed class SynthesisedSpeech
{
    public SynthesisedSpeech(float[] samples, long[] offsets, long[] labels, int[] speakerIndex, IReadOnlyList<string> words,
                             IReadOnlyList<string> speakers, IReadOnlySet<string> testSpeakers, int sampleRate)
    {
        if (offsets.Length != labels.Length + 1 || speakerIndex.Length != labels.Length || offsets[0] != 0 || offsets[^1] != samples.Length)
            throw new ArgumentException($"SynthesisedSpeech: {labels.Length} labels need {labels.Length + 1} offsets from 0 to {samples.Length} and as many speakers; got {offsets.Length} offsets ending at {offsets[^1]}, {speakerIndex.Length} speakers");
        Samples = samples; Offsets = offsets; Labels = labels; SpeakerIndex = speakerIndex;
        Words = words; Speakers = speakers; TestSpeakers = testSpeakers; SampleRate = sampleRate;
    }

    public float[] Samples { get; }
    /// <summary>Utterance i is Samples[Offsets[i] .. Offsets[i + 1]).</summary>
    public long[] Offsets { get; }
    public long[] Labels { get; }
    /// <summary>Index into <see cref="Speakers"/> of each utterance.</summary>
    public int[] SpeakerIndex { get; }
    public IReadOnlyList<string> Words { get; }
    public IReadOnlyList<string> Speakers { get; }
    public IReadOnlySet<string> TestSpeakers { get; }
    public int SampleRate { get; }
    public int Count => Labels.Length;

    public ReadOnlySpan<float> Utterance(int i) => Samples.AsSpan((int)Offsets[i], (int)(Offsets[i + 1] - Offsets[i]));

    public bool IsTest(int i) => TestSpeakers.Contains(Speakers[SpeakerIndex[i]]);

    /// <summary>Writes the store atomically as safetensors (samples, offsets, labels, speakers) with the names in the metadata.</summary>
    public void Save(string path, string key)
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["samples"] = tensor(Samples),
            ["offsets"] = tensor(Offsets),
            ["labels"] = tensor(Labels),
            ["speakers"] = tensor(SpeakerIndex.Select(s => (long)s).ToArray()),
        };
        var metadata = new Dictionary<string, string>
        {
            ["key"] = key,
            ["words"] = string.Join(",", Words),
            ["speakers"] = string.Join(",", Speakers),
            ["test_speakers"] = string.Join(",", Speakers.Where(TestSpeakers.Contains)),
            ["sample_rate"] = SampleRate.ToString(),
        };
        Safetensors.Save(path, tensors, metadata);
    }

    /// <summary>
    /// Reads a store written by <see cref="Save"/>, verifying its checksums; null when the file is missing, was written
    /// for another key, or is corrupt. A corrupt file (truncated, damaged, or without checksums) is renamed to
    /// <c>&lt;path&gt;.corrupt-&lt;UTC time&gt;</c> with one line on stderr, so the caller rebuilds the store as if it were missing.
    /// </summary>
    public static SynthesisedSpeech? TryLoad(string path, string key)
    {
        if (!File.Exists(path)) return null;
        IReadOnlyDictionary<string, string> metadata;
        Dictionary<string, Tensor> tensors;
        try
        {
            metadata = Safetensors.ReadMetadata(path);
            if (!metadata.TryGetValue("key", out var stored) || stored != key) return null;
            tensors = Safetensors.LoadVerified(path);
        }
        catch (CorruptFileException e) { return SetAside(path, e.Reason); }
        catch (InvalidDataException e) { return SetAside(path, $"not a valid safetensors file: {SafetensorsHeader.ProblemOf(e)}"); }
        try
        {
            static string[] Split(string s) => s.Length == 0 ? [] : s.Split(',');
            return new SynthesisedSpeech(
                tensors["samples"].data<float>().ToArray(), tensors["offsets"].data<long>().ToArray(), tensors["labels"].data<long>().ToArray(),
                tensors["speakers"].data<long>().ToArray().Select(s => (int)s).ToArray(), Split(metadata["words"]), Split(metadata["speakers"]),
                Split(metadata["test_speakers"]).ToHashSet(), int.Parse(metadata["sample_rate"]));
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    // The store is a cache: a damaged copy is set aside (not deleted, in case its bytes explain the damage) and rebuilt.
    private static SynthesisedSpeech? SetAside(string path, string reason)
    {
        var aside = CorruptFiles.MoveAside(path);
        Console.Error.WriteLine($"Synthesised speech cache {path} is corrupt ({reason}); moved it to {aside} and synthesising again.");
        return null;
    }
}
