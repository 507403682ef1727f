using static TorchSharp.torch;

namespace Attribution.Data.Audio;

/// <summary>
/// A labelled set of fixed-length mono clips held in memory: <see cref="Waveforms"/> float32 [N, 1, T] in
/// [-1, 1], <see cref="Labels"/> int64 [N], and the speaker of each clip. The dataset owns both tensors and frees
/// them in <see cref="Dispose"/>. <see cref="AsImages"/> gives the [N, 1, 1, T] view that image-shaped methods and
/// metrics (Grad-CAM, IBA, occlusion, insertion/deletion, ...) take.
/// </summary>
public sealed class AudioDataset : IDisposable
{
    public Tensor Waveforms { get; }
    public Tensor Labels { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int SampleRate { get; }
    /// <summary>The espeak-ng speaker (voice+variant) of each clip.</summary>
    public IReadOnlyList<string> Speakers { get; }
    public int Count => (int)Labels.shape[0];
    public long Length => Waveforms.shape[2];

    /// <exception cref="ArgumentException">Shapes, dtypes or counts do not match the contract above.</exception>
    public AudioDataset(Tensor waveforms, Tensor labels, IReadOnlyList<string> classNames, int sampleRate, IReadOnlyList<string> speakers)
    {
        ArgumentNullException.ThrowIfNull(waveforms);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(speakers);
        if (waveforms.dim() != 3 || waveforms.shape[1] != 1 || waveforms.dtype != ScalarType.Float32)
            throw new ArgumentException($"AudioDataset: waveforms must be float32 [N, 1, T]; got {waveforms.dtype} [{string.Join(", ", waveforms.shape)}]", nameof(waveforms));
        if (labels.dim() != 1 || labels.dtype != ScalarType.Int64 || labels.shape[0] != waveforms.shape[0] || speakers.Count != waveforms.shape[0])
            throw new ArgumentException($"AudioDataset: {waveforms.shape[0]} waveforms need int64 labels [N] and N speakers; got {labels.dtype} [{string.Join(", ", labels.shape)}], {speakers.Count} speakers", nameof(labels));
        Waveforms = waveforms.DetachFromDisposeScope();
        Labels = labels.DetachFromDisposeScope();
        ClassNames = classNames; SampleRate = sampleRate; Speakers = speakers;
    }

    /// <summary>A dataset from flat clip samples (clip j at [j * length, (j + 1) * length)).</summary>
    public static AudioDataset FromArrays(float[] samples, int length, long[] labels, IReadOnlyList<string> classNames, int sampleRate, IReadOnlyList<string> speakers)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(labels);
        if (samples.LongLength != (long)labels.Length * length)
            throw new ArgumentException($"AudioDataset.FromArrays: {labels.Length} clips of {length} samples need {(long)labels.Length * length} samples; got {samples.LongLength}");
        using var scope = NewDisposeScope();
        return new AudioDataset(tensor(samples).view(labels.Length, 1, length), tensor(labels), classNames, sampleRate, speakers);
    }

    /// <summary>The label index of <paramref name="word"/>.</summary>
    /// <exception cref="ArgumentException">The word is not a class.</exception>
    public int ClassOf(string word)
    {
        int i = ClassNames.ToList().IndexOf(word);
        return i >= 0 ? i : throw new ArgumentException($"'{word}' is not a class; classes: {string.Join(", ", ClassNames)}", nameof(word));
    }

    /// <summary>The first <paramref name="n"/> clips (all if fewer), as a new dataset with its own copies.</summary>
    public AudioDataset Take(int n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "AudioDataset.Take: n must be >= 0.");
        int k = Math.Min(n, Count);
        using var scope = NewDisposeScope();
        return new AudioDataset(Waveforms.narrow(0, 0, k).clone(), Labels.narrow(0, 0, k).clone(), ClassNames, SampleRate, Speakers.Take(k).ToArray());
    }

    /// <summary>The clips at <paramref name="indices"/>, in that order (repeats allowed), as a new dataset.</summary>
    public AudioDataset Select(long[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        foreach (var i in indices)
            if (i < 0 || i >= Count)
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"AudioDataset.Select: index {i} is outside [0, {Count}).");
        using var scope = NewDisposeScope();
        using var index = tensor(indices, ScalarType.Int64);
        return new AudioDataset(Waveforms.index_select(0, index), Labels.index_select(0, index), ClassNames, SampleRate,
                                indices.Select(i => Speakers[(int)i]).ToArray());
    }

    /// <summary>
    /// The clips as an <see cref="ImageDataset"/> of [N, 1, 1, T] "images" (a view of the same storage; dispose both):
    /// the shape the image-based methods, metrics and <c>Training.Train(model, ImageDataset, ...)</c> take. The values stay in [-1, 1].
    /// </summary>
    public ImageDataset AsImages()
    {
        using var scope = NewDisposeScope();
        return new ImageDataset(Waveforms.unsqueeze(2), Labels.alias(), ClassNames);
    }

    public void Dispose()
    {
        Waveforms.Dispose();
        Labels.Dispose();
    }
}
