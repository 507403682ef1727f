namespace Attribution.Data;

/// <summary>
/// Token strings to ids and back. Id 0 is <c>&lt;pad&gt;</c> (filling sequences up to a fixed length) and id 1
/// is <c>&lt;unk&gt;</c> (every token not in the vocabulary, and the mask of negative perturbation); words
/// follow in decreasing frequency, ties in ordinal order, so the same corpus gives the same ids.
/// </summary>
public sealed class Vocabulary
{
    public const long Pad = 0;
    public const long Unknown = 1;
    public const string PadToken = "<pad>";
    public const string UnknownToken = "<unk>";

    readonly string[] tokens;
    readonly Dictionary<string, long> ids;

    /// <summary>A vocabulary with exactly these tokens; the first two must be &lt;pad&gt; and &lt;unk&gt;, and none may repeat.</summary>
    public Vocabulary(IReadOnlyList<string> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Count < 2 || tokens[0] != PadToken || tokens[1] != UnknownToken)
            throw new ArgumentException($"a vocabulary starts with {PadToken} (id 0) and {UnknownToken} (id 1)", nameof(tokens));
        this.tokens = tokens.ToArray();
        ids = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int i = 0; i < this.tokens.Length; i++)
            if (!ids.TryAdd(this.tokens[i], i)) throw new ArgumentException($"token '{this.tokens[i]}' occurs twice (ids {ids[this.tokens[i]]} and {i})", nameof(tokens));
    }

    /// <summary>
    /// Counts the tokens of <paramref name="texts"/> (the training split: never the test split, whose
    /// words must look unknown exactly as a new e-mail's would) and keeps those occurring at least
    /// <paramref name="minCount"/> times, the most frequent first, up to <paramref name="maxSize"/> ids in all.
    /// </summary>
    public static Vocabulary Build(IEnumerable<IReadOnlyList<string>> texts, int minCount = 2, int maxSize = 20000)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (minCount < 1) throw new ArgumentOutOfRangeException(nameof(minCount), minCount, "the minimum count must be at least 1");
        if (maxSize < 2) throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, $"the vocabulary needs at least the two ids {PadToken} and {UnknownToken}");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var text in texts)
            foreach (var token in text)
                counts[token] = counts.GetValueOrDefault(token) + 1;
        var words = counts.Where(kv => kv.Value >= minCount && kv.Key != PadToken && kv.Key != UnknownToken)
                          .OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
                          .Take(maxSize - 2).Select(kv => kv.Key);
        return new Vocabulary(new[] { PadToken, UnknownToken }.Concat(words).ToArray());
    }

    /// <summary>Number of ids, including &lt;pad&gt; and &lt;unk&gt;.</summary>
    public int Count => tokens.Length;

    /// <summary>Tokens in id order.</summary>
    public IReadOnlyList<string> Tokens => tokens;

    /// <summary>The id of <paramref name="token"/>, or <see cref="Unknown"/>.</summary>
    public long IdOf(string token) => ids.TryGetValue(token, out var id) ? id : Unknown;

    /// <summary>Whether <paramref name="token"/> has its own id.</summary>
    public bool Contains(string token) => ids.ContainsKey(token);

    /// <summary>The token of <paramref name="id"/>.</summary>
    public string TokenOf(long id) =>
        id >= 0 && id < tokens.Length ? tokens[id] : throw new ArgumentOutOfRangeException(nameof(id), id, $"ids are 0..{tokens.Length - 1}");

    /// <summary>
    /// Ids of <paramref name="tokens"/>, truncated to <paramref name="maxLength"/> (the first tokens are kept)
    /// and padded with <see cref="Pad"/> at the end; also the number of real tokens.
    /// </summary>
    public (long[] Ids, int Length) Encode(IReadOnlyList<string> tokens, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "the sequence length must be at least 1");
        var result = new long[maxLength];
        int length = Math.Min(tokens.Count, maxLength);
        for (int i = 0; i < length; i++) result[i] = IdOf(tokens[i]);
        return (result, length);
    }

    /// <summary>The tokens of the first <paramref name="length"/> ids (all if null), joined by single spaces.</summary>
    public string Decode(IReadOnlyList<long> ids, int? length = null) =>
        string.Join(" ", ids.Take(length ?? ids.Count).Select(TokenOf));
}
