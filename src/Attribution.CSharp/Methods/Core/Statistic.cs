namespace Attribution.Methods;

/// <summary>
/// Which statistic of the sampled gradients g = grad f(z) a sampling method keeps, per feature i
/// (expectations are weighted by the sampler's weights):
/// <list type="bullet">
/// <item><c>Mean</c>: E[g_i] (SmoothGrad; with path weights, the integral of Integrated Gradients)</item>
/// <item><c>MeanSquare</c>: E[g_i^2] (SmoothGradSQ)</item>
/// <item><c>Variance</c>: E[g_i^2] - E[g_i]^2 (VarGrad, Adebayo et al. 2018; the biased estimate, as Captum's NoiseTunnel)</item>
/// <item><c>MeanAbsolute</c>: E[|g_i|] (feature-suppression sampling)</item>
/// <item><c>FisherRatio</c>: E[(C g)_i g_i / f] (Functional Information, Eq. 13, C the sampler's covariance); needs a Gaussian sampler and f &gt; 0</item>
/// </list>
/// </summary>
public enum StatisticKind { Mean, MeanSquare, Variance, MeanAbsolute, FisherRatio }

/// <summary>What multiplies the statistic: nothing, the input (Gradient x Input), or input minus the sampler's baseline (Integrated Gradients).</summary>
public enum Multiplier { None, Input, InputMinusBaseline }
