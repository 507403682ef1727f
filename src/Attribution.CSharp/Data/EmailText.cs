using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace Attribution.Data;

/// <summary>
/// Turns a raw e-mail (RFC 822 headers, a MIME body, possibly HTML) into the text a classifier reads:
/// the subject line followed by the body with the obvious machinery removed. The cleaning is
/// deliberately simple and lossy; it exists so that a model learns from words, not from mail-server
/// names, MIME boundaries, base64 attachments or HTML tags (which would make spam trivially separable
/// by routing headers and make token attributions point at plumbing).
/// </summary>
public static partial class EmailText
{
    /// <summary>
    /// The subject (without "Subject:") on the first line, then the cleaned body on the second.
    /// Steps: split headers from body at the first blank line; keep only the Subject header (with its
    /// continuation lines); decode quoted-printable when the message declares it; drop MIME part headers,
    /// boundary lines and base64 blocks; drop style/script blocks, HTML comments and tags; decode HTML
    /// entities; collapse whitespace.
    /// </summary>
    public static string Clean(string raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        var text = raw.Replace("\r\n", "\n").Replace('\r', '\n');
        int split = text.IndexOf("\n\n", StringComparison.Ordinal);
        string headers = split < 0 ? text : text[..split];
        string body = split < 0 ? "" : text[(split + 2)..];

        var subject = SubjectHeader().Match(headers) is { Success: true } m
            ? Regex.Replace(m.Groups[1].Value, @"\n[ \t]+", " ")
            : "";
        if (raw.Contains("quoted-printable", StringComparison.OrdinalIgnoreCase)) body = DecodeQuotedPrintable(body);
        body = MimeHeaderLine().Replace(body, " ");
        body = BoundaryLine().Replace(body, " ");
        body = Base64Line().Replace(body, " ");
        body = StyleOrScript().Replace(body, " ");
        body = HtmlComment().Replace(body, " ");
        body = HtmlTag().Replace(body, " ");
        body = WebUtility.HtmlDecode(body);
        return Collapse(subject) + "\n" + Collapse(body);
    }

    /// <summary>Soft line breaks (=\n) are removed and =XX becomes the byte XX (read as Latin-1).</summary>
    public static string DecodeQuotedPrintable(string text)
    {
        text = text.Replace("=\n", "");
        return QuotedByte().Replace(text, m => ((char)int.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToString());
    }

    static string Collapse(string s) => Whitespace().Replace(s, " ").Trim();

    [GeneratedRegex(@"^Subject:[ \t]*(.*(?:\n[ \t]+.*)*)", RegexOptions.Multiline | RegexOptions.IgnoreCase)]
    private static partial Regex SubjectHeader();

    [GeneratedRegex(@"=([0-9A-Fa-f]{2})")]
    private static partial Regex QuotedByte();

    // Part headers inside a multipart body, with their continuation lines.
    [GeneratedRegex(@"^(?:Content-[A-Za-z-]+|MIME-Version):.*(?:\n[ \t]+.*)*$", RegexOptions.Multiline | RegexOptions.IgnoreCase)]
    private static partial Regex MimeHeaderLine();

    [GeneratedRegex(@"^--[^\s]+--?[ \t]*$|^--[-=_A-Za-z0-9.:]{6,}[ \t]*$", RegexOptions.Multiline)]
    private static partial Regex BoundaryLine();

    [GeneratedRegex(@"^[A-Za-z0-9+/]{40,}={0,2}[ \t]*$", RegexOptions.Multiline)]
    private static partial Regex Base64Line();

    [GeneratedRegex(@"<(style|script)\b[^>]*>.*?</\1\s*>", RegexOptions.Singleline | RegexOptions.IgnoreCase)]
    private static partial Regex StyleOrScript();

    [GeneratedRegex(@"<!--.*?-->", RegexOptions.Singleline)]
    private static partial Regex HtmlComment();

    [GeneratedRegex(@"</?[A-Za-z!][^>]*>", RegexOptions.Singleline)]
    private static partial Regex HtmlTag();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
