using Attribution.IO;
using SkiaSharp;

namespace Attribution.Rendering;

/// <summary>
/// Token heatmaps as a PNG: the same content as <see cref="TokenHeatmapHtml"/> (title, normalisation statement,
/// legend, and per text its caption and its tokens on coloured boxes, <see cref="TokenColours"/>), laid out by
/// <see cref="TokenHeatmapLayout"/>, for reports that embed images.
/// </summary>
public static class TokenHeatmapPng
{
    /// <summary>Writes the PNG atomically; <paramref name="width"/> in pixels (the height follows from the texts).</summary>
    public static void Render(string path, string title, IReadOnlyList<TokenHighlight> texts, int width = 900)
    {
        ArgumentNullException.ThrowIfNull(title);
        ArgumentNullException.ThrowIfNull(texts);
        for (int t = 0; t < texts.Count; t++)
            if (texts[t].Tokens.Count != texts[t].Scores.Count)
                throw new ArgumentException($"TokenHeatmapPng: text {t} has {texts[t].Tokens.Count} tokens but {texts[t].Scores.Count} scores.", nameof(texts));
        var shades = texts.Select(text => TokenColours.Normalise(text.Scores)).ToArray();
        var layout = new TokenHeatmapLayout(texts, width);
        using var bitmap = new SKBitmap(new SKImageInfo(layout.Width, layout.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            float m = TokenHeatmapLayout.Margin, inner = layout.Width - 2 * m;
            TextDrawing.DrawInBox(canvas, title, SKRect.Create(m, m, inner, TokenHeatmapLayout.TitleHeight), 16f, SKTextAlign.Left, bold: true);
            TextDrawing.DrawInBox(canvas, TokenColours.NormalisationStatement,
                                  SKRect.Create(m, m + TokenHeatmapLayout.TitleHeight, inner, TokenHeatmapLayout.StatementHeight), 11f, SKTextAlign.Left);
            DrawLegend(canvas, layout.LegendBar);
            for (int t = 0; t < texts.Count; t++)
                TextDrawing.DrawInBox(canvas, $"{texts[t].Caption} ({TokenColours.ScaleNote(texts[t].Scores)})", layout.Captions[t], 12f, SKTextAlign.Left, bold: true);
            using var font = TokenHeatmapLayout.TokenFont();
            using var fill = new SKPaint { Style = SKPaintStyle.Fill };
            using var ink = new SKPaint { IsAntialias = true };
            foreach (var box in layout.Boxes)
            {
                var background = TokenColours.Background(shades[box.Text][box.Token]);
                fill.Color = background;
                canvas.DrawRect(box.Rect, fill);
                ink.Color = TokenColours.Foreground(background);
                canvas.Save();
                canvas.ClipRect(box.Rect);
                float baseline = box.Rect.MidY - (font.Metrics.Ascent + font.Metrics.Descent) / 2f;
                canvas.DrawText(texts[box.Text].Tokens[box.Token], box.Rect.MidX, baseline, SKTextAlign.Center, font, ink);
                canvas.Restore();
            }
            canvas.Flush();
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(path, data.ToArray());
    }

    // A bar sampled pixel by pixel from the colormap, labelled at both ends; framed so its white middle shows.
    static void DrawLegend(SKCanvas canvas, SKRect bar)
    {
        using var fill = new SKPaint { Style = SKPaintStyle.Fill };
        for (int x = 0; x < (int)bar.Width; x++)
        {
            fill.Color = TokenColours.Background(-1f + 2f * x / (bar.Width - 1));
            canvas.DrawRect(bar.Left + x, bar.Top, 1, bar.Height, fill);
        }
        using var frame = new SKPaint { Color = new SKColor(0xb0, 0xb0, 0xb0), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        canvas.DrawRect(bar.Left - 0.5f, bar.Top - 0.5f, bar.Width + 1, bar.Height + 1, frame);
        TextDrawing.DrawInBox(canvas, "-max |score|", SKRect.Create(bar.Left - 106, bar.Top - 4, 100, bar.Height + 8), 11f, SKTextAlign.Right);
        TextDrawing.DrawInBox(canvas, "+max |score|", SKRect.Create(bar.Right + 6, bar.Top - 4, 100, bar.Height + 8), 11f, SKTextAlign.Left);
    }
}
