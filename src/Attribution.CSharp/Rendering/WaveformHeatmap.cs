using Attribution.IO;
using SkiaSharp;

namespace Attribution.Rendering;

/// <summary>One row of a <see cref="WaveformHeatmap"/>: a waveform, its attribution (same length), and where a word boundary lies (optional, in samples).</summary>
public sealed record WaveformRow(string Caption, float[] Samples, float[] Attribution, long? Boundary = null);

/// <summary>
/// Renders waveforms with their attributions as a PNG: one row per waveform, the caption on the left, the waveform
/// in black (the range of the samples in each pixel column, scaled to the row's own peak) drawn over a band whose
/// colour in each pixel column is the attribution of those samples. The absolute view colours the mean |attribution|
/// of a column from white (0) to dark red (at or above the row's 99th percentile of columns); the signed view colours
/// the mean attribution blue-white-red, symmetric around 0. A white-based scale is used rather than inferno so the
/// black waveform stays readable at every value. A dashed line marks a word boundary.
/// </summary>
public static class WaveformHeatmap
{
    const int Pad = 8, CaptionWidth = 150, Gap = 6, FooterHeight = 46;

    public static void Render(string path, IReadOnlyList<WaveformRow> rows, HeatmapView view, int width = 900, int rowHeight = 100)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) throw new ArgumentException("WaveformHeatmap.Render needs at least one row", nameof(rows));
        if (width < 16 || rowHeight < 16) throw new ArgumentOutOfRangeException(nameof(width), $"width and row height must be at least 16 pixels (got {width}, {rowHeight})");
        foreach (var r in rows)
        {
            if (r.Samples.Length == 0 || r.Samples.Length != r.Attribution.Length)
                throw new ArgumentException($"WaveformHeatmap row '{r.Caption}': {r.Samples.Length} samples and {r.Attribution.Length} attributions; they must be equal and non-zero", nameof(rows));
            if (r.Boundary is { } b && (b < 0 || b > r.Samples.Length))
                throw new ArgumentException($"WaveformHeatmap row '{r.Caption}': boundary {b} is outside [0, {r.Samples.Length}]", nameof(rows));
        }
        int imageWidth = Pad + CaptionWidth + width + Pad;
        int imageHeight = Pad + rows.Count * rowHeight + (rows.Count - 1) * Gap + FooterHeight + Pad;
        using var bitmap = new SKBitmap(new SKImageInfo(imageWidth, imageHeight, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            using var ink = new SKPaint { Color = SKColors.Black, StrokeWidth = 1, IsAntialias = false };
            using var frame = new SKPaint { Color = new SKColor(0xb0, 0xb0, 0xb0), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
            using var dashes = new SKPaint { Color = new SKColor(0x40, 0x40, 0x40), StrokeWidth = 2f, PathEffect = SKPathEffect.CreateDash([8f, 3f], 0) };
            for (int r = 0; r < rows.Count; r++)
            {
                var row = rows[r];
                float top = Pad + r * (rowHeight + Gap), left = Pad + CaptionWidth;
                TextDrawing.DrawInBox(canvas, row.Caption, SKRect.Create(Pad, top, CaptionWidth - 8, rowHeight), 12f, SKTextAlign.Right);
                var (low, high, heat) = Columns(row, width, view);
                float peak = Math.Max(1e-12f, row.Samples.Max(Math.Abs));
                float middle = top + rowHeight / 2f, half = rowHeight / 2f - 2;
                using var fill = new SKPaint { Style = SKPaintStyle.Fill };
                for (int c = 0; c < width; c++)
                {
                    fill.Color = Colormaps.Diverging(heat[c]);   // absolute values lie in [0, 1]: the white-to-red half
                    canvas.DrawRect(left + c, top, 1, rowHeight, fill);
                    canvas.DrawLine(left + c + 0.5f, middle - high[c] / peak * half, left + c + 0.5f, middle - low[c] / peak * half + 1, ink);
                }
                if (row.Boundary is { } boundary)
                {
                    float x = left + (float)boundary / row.Samples.Length * width;
                    canvas.DrawLine(x, top, x, top + rowHeight, dashes);
                }
                canvas.DrawRect(left - 0.5f, top - 0.5f, width + 1, rowHeight + 1, frame);
            }
            var footer = SKRect.Create(Pad, imageHeight - Pad - FooterHeight + 4, imageWidth - 2 * Pad, FooterHeight - 4);
            TextDrawing.DrawInBox(canvas, Caption(view), footer, 11f, SKTextAlign.Left);
            canvas.Flush();
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(path, data.ToArray());
    }

    /// <summary>The footer sentence that states how colours map to values.</summary>
    public static string Caption(HeatmapView view) => view == HeatmapView.Absolute
        ? "Absolute view: mean |attribution| of the samples under each pixel column, clipped at the row's 99th percentile of columns and scaled to [0, 1]; "
          + "white = 0, dark red = at or above the 99th percentile. Waveform in black, scaled to its own peak; dashed line = word boundary."
        : "Signed view: mean attribution of the samples under each pixel column divided by the row's 99th percentile of |column|, clipped to [-1, 1]; "
          + "blue = negative, white = 0, red = positive. Waveform in black, scaled to its own peak; dashed line = word boundary.";

    /// <summary>Per pixel column: the lowest and highest sample, and the colour value (absolute in [0, 1], signed in [-1, 1]).</summary>
    static (float[] Low, float[] High, float[] Heat) Columns(WaveformRow row, int width, HeatmapView view)
    {
        int n = row.Samples.Length;
        var low = new float[width];
        var high = new float[width];
        var mean = new float[width];
        for (int c = 0; c < width; c++)
        {
            int from = (int)((long)c * n / width), to = Math.Max(from + 1, (int)((long)(c + 1) * n / width));
            float lo = float.MaxValue, hi = float.MinValue;
            double sum = 0;
            for (int i = from; i < Math.Min(to, n); i++)
            {
                lo = Math.Min(lo, row.Samples[i]);
                hi = Math.Max(hi, row.Samples[i]);
                sum += view == HeatmapView.Absolute ? Math.Abs(row.Attribution[i]) : row.Attribution[i];
            }
            low[c] = lo; high[c] = hi;
            mean[c] = (float)(sum / (Math.Min(to, n) - from));
        }
        // Absolute values in [0, 1] drawn with the upper (white-to-red) half of the diverging map.
        var heat = view == HeatmapView.Absolute ? MapNormalisation.Absolute(mean) : MapNormalisation.Signed(mean);
        return (low, high, heat);
    }
}
