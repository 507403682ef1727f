using SkiaSharp;

namespace Attribution.Rendering;

/// <summary>Where token <see cref="Token"/> of text <see cref="Text"/> is drawn, in pixels.</summary>
public readonly record struct TokenBox(int Text, int Token, SKRect Rect);

/// <summary>
/// The geometry of a <see cref="TokenHeatmapPng"/>: a header (title, normalisation statement, legend), then per text
/// a caption line and its tokens as boxes laid out left to right and wrapped at the page width, like words in a
/// paragraph. Computed before drawing so the page height is known, and public so tests can find a token's pixels.
/// </summary>
public sealed class TokenHeatmapLayout
{
    public const int Margin = 16;
    public const int TitleHeight = 30;
    public const int StatementHeight = 36;
    public const int LegendHeight = 30;
    public const int CaptionHeight = 22;
    public const int TextGap = 14;
    public const float TokenFontSize = 13f;
    const float PadX = 3f, GapX = 3f, GapY = 3f;

    public int Width { get; }
    public int Height { get; }
    /// <summary>Every token's box, texts in order, tokens in order.</summary>
    public IReadOnlyList<TokenBox> Boxes { get; }
    /// <summary>Each text's caption line.</summary>
    public IReadOnlyList<SKRect> Captions { get; }
    /// <summary>The legend's colour bar.</summary>
    public SKRect LegendBar { get; }

    public TokenHeatmapLayout(IReadOnlyList<TokenHighlight> texts, int width)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (width < 300)
            throw new ArgumentOutOfRangeException(nameof(width), width, "TokenHeatmapLayout: the page must be at least 300 px wide.");
        Width = width;
        using var font = TokenFont();
        float lineHeight = (float)Math.Ceiling(font.Spacing) + 4f;
        float right = width - Margin;
        // Room for the end labels (100 px each, drawn by TokenHeatmapPng) on both sides of the bar.
        LegendBar = SKRect.Create(Margin + 110, Margin + TitleHeight + StatementHeight + 6, Math.Min(240, width - 2 * Margin - 220), LegendHeight - 12);
        float y = Margin + TitleHeight + StatementHeight + LegendHeight;
        var boxes = new List<TokenBox>();
        var captions = new List<SKRect>();
        for (int t = 0; t < texts.Count; t++)
        {
            captions.Add(SKRect.Create(Margin, y, width - 2 * Margin, CaptionHeight));
            y += CaptionHeight;
            float x = Margin;
            for (int i = 0; i < texts[t].Tokens.Count; i++)
            {
                // A token wider than the page (a long URL) is cut to the page width rather than overflowing it.
                float w = Math.Min(font.MeasureText(texts[t].Tokens[i]) + 2 * PadX, right - Margin);
                if (x > Margin && x + w > right) { x = Margin; y += lineHeight + GapY; }
                boxes.Add(new TokenBox(t, i, SKRect.Create(x, y, w, lineHeight)));
                x += w + GapX;
            }
            y += lineHeight + TextGap;
        }
        Boxes = boxes;
        Captions = captions;
        Height = (int)Math.Ceiling(y) + Margin;
    }

    /// <summary>The font tokens are measured and drawn with.</summary>
    public static SKFont TokenFont() => new(TextDrawing.Typeface, TokenFontSize);
}
