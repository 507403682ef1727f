namespace Attribution.Sampling;

/// <summary>Rules for integrating along a path over alpha in [0, 1]; Captum's names and defaults.</summary>
public enum IntegrationRule { GaussLegendre, RiemannLeft, RiemannRight, RiemannMiddle, RiemannTrapezoid }

/// <summary>Nodes and weights on [0, 1] for each <see cref="IntegrationRule"/>.</summary>
public static class Quadrature
{
    /// <summary>(alphas, weights) with sum(weights) = 1 (exactly integrates constants).</summary>
    public static (double[] Alphas, double[] Weights) Rule(IntegrationRule rule, int steps)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "at least one step is needed");
        if (rule == IntegrationRule.RiemannTrapezoid && steps < 2) throw new ArgumentOutOfRangeException(nameof(steps), steps, "the trapezoid rule needs at least two steps");
        return rule switch
        {
            IntegrationRule.GaussLegendre => GaussLegendre(steps),
            IntegrationRule.RiemannLeft => (Range(steps, k => (double)k / steps), Constant(steps, 1.0 / steps)),
            IntegrationRule.RiemannRight => (Range(steps, k => (k + 1.0) / steps), Constant(steps, 1.0 / steps)),
            IntegrationRule.RiemannMiddle => (Range(steps, k => (k + 0.5) / steps), Constant(steps, 1.0 / steps)),
            _ => (Range(steps, k => (double)k / (steps - 1)),
                  Range(steps, k => (k == 0 || k == steps - 1 ? 0.5 : 1.0) / (steps - 1))),
        };
    }

    /// <summary>Gauss-Legendre nodes (roots of P_n, by Newton's method) mapped from [-1, 1] to [0, 1].</summary>
    static (double[], double[]) GaussLegendre(int n)
    {
        var alphas = new double[n];
        var weights = new double[n];
        for (int i = 0; i < n; i++)
        {
            double x = Math.Cos(Math.PI * (i + 0.75) / (n + 0.5));
            double derivative = 0;
            for (int iteration = 0; iteration < 100; iteration++)
            {
                var (p, dp) = Legendre(n, x);
                derivative = dp;
                double step = p / dp;
                x -= step;
                if (Math.Abs(step) < 1e-15) break;
            }
            derivative = Legendre(n, x).Derivative;
            alphas[n - 1 - i] = (x + 1) / 2;
            weights[n - 1 - i] = 1.0 / ((1 - x * x) * derivative * derivative);
        }
        return (alphas, weights);
    }

    static (double Value, double Derivative) Legendre(int n, double x)
    {
        double p0 = 1, p1 = x;
        if (n == 0) return (1, 0);
        for (int k = 2; k <= n; k++) (p0, p1) = (p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k);
        return (p1, n * (x * p1 - p0) / (x * x - 1));
    }

    static double[] Range(int n, Func<int, double> f) => Enumerable.Range(0, n).Select(f).ToArray();
    static double[] Constant(int n, double v) => Enumerable.Repeat(v, n).ToArray();
}
