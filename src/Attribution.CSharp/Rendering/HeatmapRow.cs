using System.Collections.Generic;

namespace Attribution.Rendering;

/// <summary>
/// One input row of a heatmap grid: the input image (grayscale [H, W] row-major, or colour [3, H, W] planar R, G, B;
/// values in [0, 1]) and one attribution map per method column ([H, W] row-major).
/// </summary>
public sealed record HeatmapRow(string Caption, float[] Image, IReadOnlyList<float[]> Maps, int Height, int Width);
