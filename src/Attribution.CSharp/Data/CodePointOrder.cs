namespace Attribution.Data;

/// <summary>
/// Orders strings by Unicode code point, as Python's <c>sorted</c> does, so that class folders get the labels
/// torchvision gives them. <see cref="StringComparer.Ordinal"/> compares UTF-16 code units instead, which puts a
/// character above U+FFFF (stored as a surrogate pair, 0xD800..0xDFFF) before one in U+E000..U+FFFF.
/// </summary>
public sealed class CodePointOrder : IComparer<string>
{
    public static readonly CodePointOrder Instance = new();

    CodePointOrder() { }

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null) return -1;
        if (y is null) return 1;
        int n = Math.Min(x.Length, y.Length);
        for (int i = 0; i < n; i++)
            if (x[i] != y[i]) return Rank(x[i]).CompareTo(Rank(y[i]));
        return x.Length.CompareTo(y.Length);
    }

    // At the first differing code unit, lifting surrogates above U+E000..U+FFFF restores code-point order
    // (both strings agree before it, so a low surrogate only meets another low surrogate).
    static int Rank(char c) => c >= 0xE000 ? c - 0x800 : c >= 0xD800 ? c + 0x2000 : c;
}
