namespace Attribution.Metrics;

/// <summary>Area under a curve by the trapezoid rule over its own x values (no rescaling of x).</summary>
public static class Auc
{
    public static double Trapezoid(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count) throw new ArgumentException($"{x.Count} x values for {y.Count} y values");
        double area = 0;
        for (int i = 1; i < x.Count; i++)
        {
            if (!(x[i] > x[i - 1])) throw new ArgumentException("x values must be strictly increasing");
            area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2;
        }
        return area;
    }
}
