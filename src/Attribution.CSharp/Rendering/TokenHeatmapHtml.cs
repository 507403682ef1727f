using System.Globalization;
using System.Net;
using System.Text;
using Attribution.IO;

namespace Attribution.Rendering;

/// <summary>
/// Token heatmaps as one self-contained HTML page: a title, the normalisation statement, a colour legend, and per
/// text a figure whose tokens are spans coloured by their score (<see cref="TokenColours"/>), each carrying its raw
/// score as a tooltip, with the caption (label, prediction, method) underneath. Every piece of text that comes
/// from data (tokens, captions, title) is HTML-escaped: e-mails contain markup.
/// </summary>
public static class TokenHeatmapHtml
{
    /// <summary>Writes the page to <paramref name="path"/> atomically.</summary>
    public static void Render(string path, string title, IReadOnlyList<TokenHighlight> texts) =>
        AtomicFile.WriteAllText(path, ToHtml(title, texts));

    /// <summary>The page as a string.</summary>
    public static string ToHtml(string title, IReadOnlyList<TokenHighlight> texts)
    {
        ArgumentNullException.ThrowIfNull(title);
        ArgumentNullException.ThrowIfNull(texts);
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").Append(Escape(title)).Append("</title>\n")
            .Append("<style>\n")
            .Append("body { font-family: 'DejaVu Sans', sans-serif; max-width: 60em; margin: 2em auto; }\n")
            .Append(".tokens { line-height: 1.9; }\n")
            .Append(".tokens span { padding: 0.1em 0.2em; border-radius: 0.2em; }\n")
            .Append(".legend { display: flex; align-items: center; gap: 0.5em; margin: 1em 0; }\n")
            .Append(".bar { width: 16em; height: 1em; border: 1px solid #b0b0b0; background: linear-gradient(to right, ").Append(GradientStops()).Append("); }\n")
            .Append("figure { margin: 1.5em 0; border-top: 1px solid #d0d0d0; padding-top: 0.8em; }\n")
            .Append("figcaption { margin-top: 0.5em; color: #404040; font-style: italic; }\n")
            .Append("</style>\n</head>\n<body>\n")
            .Append("<h1>").Append(Escape(title)).Append("</h1>\n")
            .Append("<p class=\"normalisation\">").Append(Escape(TokenColours.NormalisationStatement)).Append("</p>\n")
            .Append("<div class=\"legend\"><span>-max |score|</span><div class=\"bar\"></div><span>+max |score|</span></div>\n");
        for (int t = 0; t < texts.Count; t++) AppendText(html, texts[t], t);
        html.Append("</body>\n</html>\n");
        return html.ToString();
    }

    static void AppendText(StringBuilder html, TokenHighlight text, int index)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Tokens.Count != text.Scores.Count)
            throw new ArgumentException($"TokenHeatmapHtml: text {index} has {text.Tokens.Count} tokens but {text.Scores.Count} scores.", nameof(text));
        var shades = TokenColours.Normalise(text.Scores);
        html.Append("<figure>\n<div class=\"tokens\">");
        for (int i = 0; i < shades.Length; i++)
        {
            var background = TokenColours.Background(shades[i]);
            html.Append("<span style=\"background-color: ").Append(TokenColours.Hex(background))
                .Append("; color: ").Append(TokenColours.Hex(TokenColours.Foreground(background)))
                .Append("\" title=\"score ").Append(Escape(text.Scores[i].ToString("G4", CultureInfo.InvariantCulture))).Append("\">")
                .Append(Escape(text.Tokens[i])).Append("</span>");
            if (i < shades.Length - 1) html.Append(' ');
        }
        html.Append("</div>\n<figcaption>").Append(Escape(text.Caption)).Append(" (").Append(Escape(TokenColours.ScaleNote(text.Scores)))
            .Append(")</figcaption>\n</figure>\n");
    }

    // The diverging map sampled at its 11 stops, so the legend shows exactly the colours the tokens use.
    static string GradientStops() =>
        string.Join(", ", Enumerable.Range(0, 11).Select(i => TokenColours.Hex(TokenColours.Background(-1f + i / 5f))));

    static string Escape(string s) => WebUtility.HtmlEncode(s);
}
