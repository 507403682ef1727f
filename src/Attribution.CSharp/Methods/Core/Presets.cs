using Attribution.Sampling;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The named methods, as sampler x statistic data (no code copies). Defaults are the papers':
/// SmoothGrad's 15% noise, Captum's 50 Gauss-Legendre steps for IG, Captum's absolute Saliency.
/// </summary>
public static class Presets
{
    /// <summary>|grad f(x)| (Simonyan et al. 2013); signed when <paramref name="absolute"/> is false.</summary>
    public static SampledGradients Saliency(bool absolute = true) =>
        new("saliency", new InputPoint(), 1, StatisticKind.Mean, absolute: absolute);

    /// <summary>x (.) grad f(x) (Shrikumar et al. 2016).</summary>
    public static SampledGradients GradientXInput() =>
        new("gradient_x_input", new InputPoint(), 1, StatisticKind.Mean, Multiplier.Input);

    /// <summary>(x - b) (.) integral of grad f along the straight line from b to x (Sundararajan et al. 2017).</summary>
    public static SampledGradients IntegratedGradients(int steps = 50, IntegrationRule rule = IntegrationRule.GaussLegendre, double baseline = 0.0) =>
        new("integrated_gradients", new StraightLinePath(steps, rule, baseline), steps, StatisticKind.Mean, Multiplier.InputMinusBaseline);

    /// <summary>E[grad f(z)], z ~ sampler (Smilkov et al. 2017).</summary>
    public static SampledGradients SmoothGrad(ISampler? sampler = null, int samples = 50) =>
        new("smooth_grad", sampler ?? new IsotropicGaussian(), samples, StatisticKind.Mean);

    /// <summary>E[grad f(z)^2] (Smilkov et al. 2017, squared variant).</summary>
    public static SampledGradients SmoothGradSq(ISampler? sampler = null, int samples = 50) =>
        new("smooth_grad_sq", sampler ?? new IsotropicGaussian(), samples, StatisticKind.MeanSquare);

    /// <summary>Var[grad f(z)] (Adebayo et al. 2018).</summary>
    public static SampledGradients VarGrad(ISampler? sampler = null, int samples = 50) =>
        new("var_grad", sampler ?? new IsotropicGaussian(), samples, StatisticKind.Variance);

    /// <summary>
    /// E[(C grad f)_i grad f_i / f], z ~ N(x, C) (Gat et al. 2022, Eq. 13): with a covariance sampler
    /// C = s Sigma_y; with an isotropic one C = stdev^2 I (the nu variant, a rescaled |grad f|^2 / f).
    /// </summary>
    public static SampledGradients FunctionalInformation(IGaussianSampler sampler, int samples = 50) =>
        new("functional_information", sampler, samples, StatisticKind.FisherRatio);

    /// <summary>
    /// E[|grad f(x*)|] over feature-suppressed copies x* of x, each pixel dropped (set to 0) with probability p
    /// (Luo et al., "Sampling Matters in Explanations", Eq. 11); p = 0.7 as in their Fig. 1, [0.6, 0.8] best
    /// (Fig. 4b). With <paramref name="timesInput"/> the map is multiplied by x (their "Gradient x Input" variant).
    /// </summary>
    public static SampledGradients FeatureSuppression(double p = 0.7, int samples = 50, bool timesInput = false) =>
        new("feature_suppression", new BernoulliSuppression(p), samples, StatisticKind.MeanAbsolute,
            timesInput ? Multiplier.Input : Multiplier.None);

    /// <summary>
    /// Expected Gradients (Erion et al. 2021; Captum's GradientShap with stdevs = 0): E[(x - b) (.) grad f(b + alpha (x - b))],
    /// b uniform over <paramref name="references"/> [R, ...], alpha ~ U(0, 1). Captum's default is 5 samples;
    /// 50 here, the sample count of the other Monte-Carlo presets.
    /// </summary>
    public static SampledGradients ExpectedGradients(Tensor references, int samples = 50) =>
        new("expected_gradients", new BaselineDistribution(references), samples, StatisticKind.Mean);
}
