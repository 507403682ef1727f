namespace Attribution.Rendering;

/// <summary>One named line of a <see cref="CurvePlot"/>: points (X[i], Y[i]).</summary>
public sealed record CurveSeries(string Name, double[] X, double[] Y);
