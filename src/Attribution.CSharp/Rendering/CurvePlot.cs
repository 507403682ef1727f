using System;
using System.Collections.Generic;
using Attribution.IO;

namespace Attribution.Rendering;

/// <summary>Line plots (insertion/deletion curves, estimator convergence) as PNG via ScottPlot, headless, written atomically.</summary>
public static class CurvePlot
{
    public static void Render(string path, string title, string xLabel, string yLabel, IReadOnlyList<CurveSeries> series, int width = 800, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(series);
        if (series.Count == 0) throw new ArgumentException("CurvePlot.Render: no series; pass at least one CurveSeries.", nameof(series));
        if (width < 100 || height < 100) throw new ArgumentOutOfRangeException(nameof(width), $"CurvePlot.Render: the image must be at least 100x100 pixels; got {width}x{height}.");
        foreach (var s in series)
        {
            if (s.X.Length != s.Y.Length || s.X.Length == 0)
                throw new ArgumentException($"CurvePlot.Render: series '{s.Name}' has {s.X.Length} x and {s.Y.Length} y values; they must be equal and non-zero.", nameof(series));
        }
        using var plot = new ScottPlot.Plot();
        foreach (var s in series)
        {
            var line = plot.Add.Scatter(s.X, s.Y);
            line.LegendText = s.Name;
            line.MarkerSize = s.X.Length > 30 ? 0 : 4;
            line.LineWidth = 2;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        // Outside the data area: insertion and deletion curves fill opposite corners, so no inside corner is free.
        plot.ShowLegend(ScottPlot.Edge.Right);
        var bytes = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
        AtomicFile.WriteAllBytes(path, bytes);
    }
}
