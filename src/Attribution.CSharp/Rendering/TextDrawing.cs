using System;
using System.Collections.Generic;
using SkiaSharp;

namespace Attribution.Rendering;

/// <summary>Word-wrapped, shrink-to-fit text in a box, so that long captions never spill into cells.</summary>
internal static class TextDrawing
{
    internal static readonly SKTypeface Typeface = SKTypeface.FromFamilyName("DejaVu Sans") ?? SKTypeface.Default;

    public static void DrawInBox(SKCanvas canvas, string text, SKRect box, float maxSize, SKTextAlign align, bool bold = false)
    {
        if (string.IsNullOrEmpty(text)) return;
        using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var typeface = bold ? SKTypeface.FromFamilyName(Typeface.FamilyName, SKFontStyle.Bold) : null;
        for (float size = maxSize; ; size -= 0.5f)
        {
            using var font = new SKFont(typeface ?? Typeface, size);
            float lineHeight = font.Spacing;
            var lines = Wrap(text, font, box.Width);
            bool fits = lines.Count * lineHeight <= box.Height && lines.TrueForAll(l => font.MeasureText(l) <= box.Width);
            if (!fits && size > 6f) continue;
            float top = box.MidY - lines.Count * lineHeight / 2f;
            float x = align switch { SKTextAlign.Left => box.Left, SKTextAlign.Right => box.Right, _ => box.MidX };
            canvas.Save();
            canvas.ClipRect(box);
            for (int i = 0; i < lines.Count; i++)
                canvas.DrawText(lines[i], x, top + i * lineHeight - font.Metrics.Ascent, align, font, paint);
            canvas.Restore();
            return;
        }
    }

    private static List<string> Wrap(string text, SKFont font, float width)
    {
        var lines = new List<string>();
        var line = "";
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = line.Length == 0 ? word : line + " " + word;
            if (line.Length > 0 && font.MeasureText(candidate) > width) { lines.Add(line); line = word; }
            else line = candidate;
        }
        if (line.Length > 0) lines.Add(line);
        return lines;
    }
}
