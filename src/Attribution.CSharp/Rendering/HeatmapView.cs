namespace Attribution.Rendering;

/// <summary>How an attribution map is turned into colour.</summary>
public enum HeatmapView
{
    /// <summary>|map| clipped at its own 99th percentile, scaled to [0, 1], sequential colormap (inferno).</summary>
    Absolute,
    /// <summary>map / 99th percentile of |map|, clipped to [-1, 1], diverging blue-white-red centred on zero.</summary>
    Signed,
}
