using System;
using System.Collections.Generic;
using Attribution.IO;
using SkiaSharp;

namespace Attribution.Rendering;

/// <summary>
/// Renders attribution maps as a PNG grid: one row per input, the input image first, then one column per
/// method, with the normalisation stated in the footer (as a figure caption would). Each map is scaled on
/// its own (see <see cref="MapNormalisation"/>), so colours compare pixels within a map, not across maps.
/// Images and maps are stretched to square cells with nearest-neighbour sampling, so pixels stay visible.
/// </summary>
public static class HeatmapGrid
{
    public static void Render(string path, IReadOnlyList<string> methodTitles, IReadOnlyList<HeatmapRow> rows, HeatmapView view, int cellSize = 112)
    {
        Validate(methodTitles, rows, cellSize);
        var layout = new HeatmapLayout(methodTitles.Count + 1, rows.Count, cellSize);
        using var bitmap = new SKBitmap(new SKImageInfo(layout.Width, layout.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            var titles = new List<string> { "Input" };
            titles.AddRange(methodTitles);
            for (int c = 0; c < titles.Count; c++)
            {
                var (x, _) = layout.CellOrigin(0, c);
                TextDrawing.DrawInBox(canvas, titles[c], SKRect.Create(x, HeatmapLayout.Pad, cellSize, HeatmapLayout.TitleHeight - 2), 13f, SKTextAlign.Center, bold: true);
            }
            for (int r = 0; r < rows.Count; r++)
            {
                var (_, y) = layout.CellOrigin(r, 0);
                TextDrawing.DrawInBox(canvas, rows[r].Caption, SKRect.Create(HeatmapLayout.Pad, y, HeatmapLayout.CaptionWidth - 8, cellSize), 12f, SKTextAlign.Right);
            }
            var footer = SKRect.Create(HeatmapLayout.Pad, layout.Height - HeatmapLayout.Pad - HeatmapLayout.FooterHeight + 4,
                                       layout.Width - 2 * HeatmapLayout.Pad, HeatmapLayout.FooterHeight - 4);
            TextDrawing.DrawInBox(canvas, Caption(view), footer, 11f, SKTextAlign.Left);
            // A frame just outside each cell: white (zero) signed cells would otherwise merge with the background.
            using var frame = new SKPaint { Color = new SKColor(0xb0, 0xb0, 0xb0), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
            for (int r = 0; r < rows.Count; r++)
                for (int c = 0; c < titles.Count; c++)
                {
                    var (x, y) = layout.CellOrigin(r, c);
                    canvas.DrawRect(x - 1.5f, y - 1.5f, cellSize + 2f, cellSize + 2f, frame);
                }
            canvas.Flush();
        }
        for (int r = 0; r < rows.Count; r++)
        {
            var row = rows[r];
            int plane = row.Height * row.Width;
            Func<int, SKColor> input = row.Image.Length == 3 * plane
                ? i => new SKColor(Level(row.Image[i]), Level(row.Image[plane + i]), Level(row.Image[2 * plane + i]))
                : i => Gray(row.Image[i]);
            FillCell(bitmap, layout.CellOrigin(r, 0), cellSize, row.Height, row.Width, input);
            for (int m = 0; m < row.Maps.Count; m++)
            {
                var colours = Colourise(row.Maps[m], view, row.Caption, methodTitles[m]);
                FillCell(bitmap, layout.CellOrigin(r, m + 1), cellSize, row.Height, row.Width, i => colours[i]);
            }
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(path, data.ToArray());
    }

    /// <summary>The footer sentence that states how colours map to values.</summary>
    public static string Caption(HeatmapView view) => view switch
    {
        HeatmapView.Absolute => "Absolute view: |attribution| clipped at each map's own 99th percentile and scaled to [0, 1]; "
                              + "inferno colormap, black = 0, pale yellow = at or above the 99th percentile.",
        _ => "Signed view: attribution divided by the 99th percentile of |attribution| of each map, clipped to [-1, 1]; "
           + "blue = negative, white = 0, red = positive, symmetric around 0.",
    };

    private static SKColor[] Colourise(float[] map, HeatmapView view, string row, string method)
    {
        try
        {
            var scaled = view == HeatmapView.Absolute ? MapNormalisation.Absolute(map) : MapNormalisation.Signed(map);
            return Array.ConvertAll(scaled, v => view == HeatmapView.Absolute ? Colormaps.Sequential(v) : Colormaps.Diverging(v));
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"HeatmapGrid: row '{row}', method '{method}': {e.Message}", e);
        }
    }

    private static byte Level(float v) => (byte)Math.Round(Math.Clamp(float.IsNaN(v) ? 0f : v, 0f, 1f) * 255f);

    private static SKColor Gray(float v)
    {
        byte g = Level(v);
        return new SKColor(g, g, g);
    }

    private static void FillCell(SKBitmap bitmap, (int X, int Y) origin, int cellSize, int h, int w, Func<int, SKColor> colourAt)
    {
        for (int dy = 0; dy < cellSize; dy++)
        {
            int sy = Math.Min(h - 1, (int)((long)dy * h / cellSize));
            for (int dx = 0; dx < cellSize; dx++)
            {
                int sx = Math.Min(w - 1, (int)((long)dx * w / cellSize));
                bitmap.SetPixel(origin.X + dx, origin.Y + dy, colourAt(sy * w + sx));
            }
        }
    }

    private static void Validate(IReadOnlyList<string> methodTitles, IReadOnlyList<HeatmapRow> rows, int cellSize)
    {
        ArgumentNullException.ThrowIfNull(methodTitles);
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) throw new ArgumentException("HeatmapGrid.Render: no rows; pass at least one HeatmapRow.", nameof(rows));
        if (cellSize < 4 || cellSize > 2048) throw new ArgumentOutOfRangeException(nameof(cellSize), cellSize, "HeatmapGrid.Render: cellSize must be in [4, 2048] pixels.");
        foreach (var row in rows)
        {
            if (row.Height <= 0 || row.Width <= 0)
                throw new ArgumentException($"HeatmapGrid.Render: row '{row.Caption}' has size {row.Height}x{row.Width}; both must be positive.", nameof(rows));
            int n = row.Height * row.Width;
            if (row.Image.Length != n && row.Image.Length != 3 * n)
                throw new ArgumentException($"HeatmapGrid.Render: row '{row.Caption}': image has {row.Image.Length} values, expected {row.Height}x{row.Width} = {n} (grayscale) or 3 x {n} (R, G, B).", nameof(rows));
            if (row.Maps.Count != methodTitles.Count)
                throw new ArgumentException($"HeatmapGrid.Render: row '{row.Caption}' has {row.Maps.Count} maps but there are {methodTitles.Count} method titles; give one map per method, in title order.", nameof(rows));
            for (int m = 0; m < row.Maps.Count; m++)
                if (row.Maps[m].Length != n)
                    throw new ArgumentException($"HeatmapGrid.Render: row '{row.Caption}', method '{methodTitles[m]}': map has {row.Maps[m].Length} values, expected {n}.", nameof(rows));
        }
    }
}
