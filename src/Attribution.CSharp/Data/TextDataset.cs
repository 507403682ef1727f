using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Data;

/// <summary>
/// A labelled text set held in memory: <see cref="Tokens"/> int64 [N, T] (ids of <see cref="Vocabulary"/>,
/// padded with <see cref="Vocabulary.Pad"/> at the end), <see cref="Lengths"/> int64 [N] (real tokens per
/// row, at least 0 and at most T) and <see cref="Labels"/> int64 [N]. The dataset owns the tensors (they are
/// detached from any dispose scope when it is built) and frees them in <see cref="Dispose"/>.
/// </summary>
public sealed class TextDataset : IDisposable
{
    public Tensor Tokens { get; }
    public Tensor Lengths { get; }
    public Tensor Labels { get; }
    public Vocabulary Vocabulary { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Count => (int)Labels.shape[0];

    /// <summary>Sequence length T.</summary>
    public int MaxLength => (int)Tokens.shape[1];

    /// <exception cref="ArgumentException">Shapes or dtypes do not match the contract above.</exception>
    public TextDataset(Tensor tokens, Tensor lengths, Tensor labels, Vocabulary vocabulary, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(lengths);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(vocabulary);
        ArgumentNullException.ThrowIfNull(classNames);
        if (tokens.dim() != 2 || tokens.dtype != ScalarType.Int64)
            throw new ArgumentException($"TextDataset: tokens must be int64 [N, T]; got {tokens.dtype} [{string.Join(", ", tokens.shape)}].", nameof(tokens));
        foreach (var (t, name) in new[] { (lengths, nameof(lengths)), (labels, nameof(labels)) })
            if (t.dim() != 1 || t.dtype != ScalarType.Int64 || t.shape[0] != tokens.shape[0])
                throw new ArgumentException($"TextDataset: {name} must be int64 [N] with N = {tokens.shape[0]}; got {t.dtype} [{string.Join(", ", t.shape)}].", name);
        Tokens = tokens.DetachFromDisposeScope();
        Lengths = lengths.DetachFromDisposeScope();
        Labels = labels.DetachFromDisposeScope();
        Vocabulary = vocabulary;
        ClassNames = classNames;
    }

    /// <summary>Encodes tokenized texts with <paramref name="vocabulary"/> to length <paramref name="maxLength"/> (see <see cref="Vocabulary.Encode"/>).</summary>
    public static TextDataset Encode(IReadOnlyList<IReadOnlyList<string>> texts, IReadOnlyList<long> labels, Vocabulary vocabulary,
                                     IReadOnlyList<string> classNames, int maxLength = 256)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(vocabulary);
        if (texts.Count != labels.Count) throw new ArgumentException($"{texts.Count} texts but {labels.Count} labels", nameof(labels));
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "the sequence length must be at least 1");
        var ids = new long[texts.Count * (long)maxLength];
        var lengths = new long[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            var (row, length) = vocabulary.Encode(texts[i], maxLength);
            Array.Copy(row, 0, ids, (long)i * maxLength, maxLength);
            lengths[i] = length;
        }
        using var scope = NewDisposeScope();
        return new TextDataset(torch.tensor(ids, new long[] { texts.Count, maxLength }, ScalarType.Int64),
                               torch.tensor(lengths, ScalarType.Int64), torch.tensor(labels.ToArray(), ScalarType.Int64),
                               vocabulary, classNames);
    }

    /// <summary>The real tokens of row <paramref name="index"/>, joined by single spaces (padding left out).</summary>
    public string Decode(int index)
    {
        if (index < 0 || index >= Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"TextDataset.Decode: index must be in [0, {Count}).");
        using var scope = NewDisposeScope();
        var row = Tokens[index].data<long>().ToArray();
        return Vocabulary.Decode(row, (int)Lengths[index].item<long>());
    }

    /// <summary>The first <paramref name="n"/> rows (all of them if fewer), as a new dataset with its own copies.</summary>
    public TextDataset Take(int n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "TextDataset.Take: n must be >= 0.");
        long k = Math.Min(n, Count);
        using var scope = NewDisposeScope();
        return new TextDataset(Tokens.narrow(0, 0, k).clone(), Lengths.narrow(0, 0, k).clone(), Labels.narrow(0, 0, k).clone(), Vocabulary, ClassNames);
    }

    /// <summary>The rows at <paramref name="indices"/>, in that order (repeats allowed), as a new dataset.</summary>
    public TextDataset Select(long[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        foreach (var i in indices)
            if (i < 0 || i >= Count)
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"TextDataset.Select: index {i} is outside [0, {Count}).");
        using var scope = NewDisposeScope();
        using var index = torch.tensor(indices, ScalarType.Int64);
        return new TextDataset(Tokens.index_select(0, index), Lengths.index_select(0, index), Labels.index_select(0, index), Vocabulary, ClassNames);
    }

    public void Dispose()
    {
        Tokens.Dispose();
        Lengths.Dispose();
        Labels.Dispose();
    }
}
