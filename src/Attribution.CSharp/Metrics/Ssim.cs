using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>
/// Structural similarity (Wang, Bovik, Sheikh and Simoncelli 2004, Eq. 13 with the Gaussian window of Sec. III.C):
/// SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
/// C1 = (K1 L)^2, C2 = (K2 L)^2, with local statistics weighted by a normalised Gaussian window (11 x 11,
/// sigma 1.5; K1 = 0.01, K2 = 0.03), over every position where the window fits inside the image ("valid", as
/// the authors' MATLAB code), and averaged (mean SSIM). L is the data range: 1 for maps normalised to [0, 1].
/// Computed in float64. An image with fewer rows (or columns) than the window, such as an audio map [B, C, 1, T],
/// gets the 1-D window along its other axis: the same statistic for a one-dimensional signal.
/// </summary>
public static class Ssim
{
    public const int DefaultWindow = 11;
    public const double DefaultSigma = 1.5;
    public const double DefaultK1 = 0.01;
    public const double DefaultK2 = 0.03;

    /// <summary>Local SSIM of images [B, C, H, W]: [B, C, H - window + 1, W - window + 1] (a side shorter than the window keeps its size), float64.</summary>
    public static Tensor Map(Tensor x, Tensor y, double dataRange = 1.0, int window = DefaultWindow, double sigma = DefaultSigma,
                             double k1 = DefaultK1, double k2 = DefaultK2)
    {
        if (x.dim() != 4 || !x.shape.SequenceEqual(y.shape))
            throw new ArgumentException($"SSIM needs two images [B, C, H, W] of one shape; got [{string.Join(", ", x.shape)}] and [{string.Join(", ", y.shape)}]");
        if (x.shape[2] < window && x.shape[3] < window)
            throw new ArgumentException($"images {x.shape[2]}x{x.shape[3]} are smaller than the {window}x{window} window in both directions");
        using var scope = NewDisposeScope();
        long c = x.shape[1];
        var k = GaussianBlur.Kernel1D(sigma, window).to(x.device);
        var one = ones(1, k.dtype, k.device);
        var kh = x.shape[2] < window ? one : k;
        var kw = x.shape[3] < window ? one : k;
        var w2 = kh.view(-1, 1).matmul(kw.view(1, -1)).view(1, 1, kh.shape[0], kw.shape[0]).expand(c, 1, kh.shape[0], kw.shape[0]).contiguous();
        Tensor Filter(Tensor t) => nn.functional.conv2d(t, w2, groups: c);
        var a = x.to(ScalarType.Float64);
        var b = y.to(ScalarType.Float64);
        var muA = Filter(a);
        var muB = Filter(b);
        var varA = Filter(a * a) - muA * muA;
        var varB = Filter(b * b) - muB * muB;
        var cov = Filter(a * b) - muA * muB;
        double c1 = Math.Pow(k1 * dataRange, 2), c2 = Math.Pow(k2 * dataRange, 2);
        var ssim = (2 * muA * muB + c1) * (2 * cov + c2) / ((muA * muA + muB * muB + c1) * (varA + varB + c2));
        return ssim.MoveToOuterDisposeScope();
    }

    /// <summary>Mean SSIM of each pair of images [B, C, H, W] (over channels and positions): B values.</summary>
    public static double[] Mean(Tensor x, Tensor y, double dataRange = 1.0, int window = DefaultWindow, double sigma = DefaultSigma,
                                double k1 = DefaultK1, double k2 = DefaultK2)
    {
        using var map = Map(x, y, dataRange, window, sigma, k1, k2);
        using var mean = map.flatten(1).mean([1]).cpu();
        return mean.data<double>().ToArray();
    }
}
