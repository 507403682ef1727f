using System;
using System.Collections.Generic;
using System.Linq;
using Attribution.IO;

namespace Attribution.Rendering;

/// <summary>
/// One tabular input's attributions as horizontal bars (PNG via ScottPlot, written atomically): the features with the
/// largest |score| summed over the methods, a bar per method, each method's scores divided by its largest |score| so
/// that methods of different scales share an axis (signs kept).
/// </summary>
public static class FeatureBars
{
    /// <param name="path">The PNG to write.</param>
    /// <param name="title">The plot's title.</param>
    /// <param name="features">The features' names, in input order.</param>
    /// <param name="values">The input's value of each feature (shown beside its name).</param>
    /// <param name="methods">Method names and their scores, one per feature.</param>
    /// <param name="top">How many features to show, the most attributed first.</param>
    public static void Render(string path, string title, IReadOnlyList<string> features, IReadOnlyList<float> values,
                              IReadOnlyList<(string Name, float[] Scores)> methods, int top = 20)
    {
        ArgumentNullException.ThrowIfNull(methods);
        if (methods.Count == 0) throw new ArgumentException("FeatureBars.Render: no methods", nameof(methods));
        if (values.Count != features.Count || methods.Any(m => m.Scores.Length != features.Count))
            throw new ArgumentException($"FeatureBars.Render: {features.Count} features, {values.Count} values, scores of {string.Join("/", methods.Select(m => m.Scores.Length))}");
        var scaled = methods.Select(m =>
        {
            float largest = m.Scores.Select(Math.Abs).DefaultIfEmpty(0f).Max();
            return m.Scores.Select(s => largest > 0 ? s / largest : 0f).ToArray();
        }).ToArray();
        int[] shown = Enumerable.Range(0, features.Count)
                                .OrderByDescending(f => scaled.Sum(s => Math.Abs(s[f])))
                                .Take(Math.Min(top, features.Count))
                                .Reverse()                                     // the largest at the top of the plot
                                .ToArray();
        using var plot = new ScottPlot.Plot();
        double group = methods.Count + 1.0;
        for (int m = 0; m < methods.Count; m++)
        {
            var bars = shown.Select((f, row) => new ScottPlot.Bar
            {
                Position = row * group + (methods.Count - 1 - m),          // the legend's order, top down
                Value = scaled[m][f],
                FillColor = ScottPlot.Palette.Default.GetColor(m),
                Orientation = ScottPlot.Orientation.Horizontal,
            }).ToList();
            var series = plot.Add.Bars(bars);
            series.LegendText = methods[m].Name;
        }
        var ticks = shown.Select((f, row) => new ScottPlot.Tick(row * group + (methods.Count - 1) / 2.0, $"{features[f]} = {values[f]:G4}")).ToArray();
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.Title(title);
        plot.XLabel("score / the method's largest |score|");
        plot.ShowLegend(ScottPlot.Edge.Right);
        var bytes = plot.GetImageBytes(900, Math.Max(300, 60 + shown.Length * (methods.Count + 1) * 9), ScottPlot.ImageFormat.Png);
        AtomicFile.WriteAllBytes(path, bytes);
    }
}
