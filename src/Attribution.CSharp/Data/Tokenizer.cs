using System.Text.RegularExpressions;

namespace Attribution.Data;

/// <summary>
/// A simple lower-casing word tokenizer: runs of letters (with inner apostrophes, "don't"), runs of digits
/// (with inner '.' or ',', "3.50", "1,000"), and every other non-space character on its own ("!", "$", "&lt;").
/// Whitespace separates tokens and is dropped, so joining the tokens with single spaces and tokenizing
/// again gives the same tokens.
/// </summary>
public static partial class Tokenizer
{
    /// <summary>The tokens of <paramref name="text"/>, lower-cased (invariant culture), in order.</summary>
    public static string[] Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var matches = Token().Matches(text.ToLowerInvariant());
        var tokens = new string[matches.Count];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = matches[i].Value;
        return tokens;
    }

    [GeneratedRegex(@"[\p{L}\p{M}]+(?:'[\p{L}\p{M}]+)*|\p{Nd}+(?:[.,]\p{Nd}+)*|[^\s\p{L}\p{M}\p{Nd}]")]
    private static partial Regex Token();
}
