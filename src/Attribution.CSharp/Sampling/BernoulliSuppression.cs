using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>
/// Feature suppression (Luo, McDermott, O'Riordan, "Sampling Matters in Explanations", Sec. 4.1, Eq. 11):
/// each pixel of x is kept with probability 1 - p and set to 0 otherwise, x*_i = B({x_i, 0}; 1 - p). Samples
/// remove information instead of adding noise, so they stay close to natural images (Sec. 4.2). One mask
/// value per pixel is shared by all channels of that pixel (a dropped pixel is black, not a colour shift);
/// for inputs [1, d] without channels every feature has its own mask.
/// <para>p = 0.7 is the paper's setting in Fig. 1; Fig. 4(b) finds p in [0.6, 0.8] best (network activation
/// and the mutual information between input and explanation both peak there). The paper's statistic is
/// E[|grad f(x*)|] (Eq. 11, <see cref="Attribution.Methods.StatisticKind.MeanAbsolute"/>), optionally times
/// the input (Fig. 1). "0" is zero in the model's input space: for normalised inputs that is the dataset-mean
/// colour.</para>
/// </summary>
public sealed class BernoulliSuppression : ISampler
{
    public BernoulliSuppression(double dropProbability = 0.7)
    {
        if (!(dropProbability >= 0 && dropProbability < 1))
            throw new ArgumentOutOfRangeException(nameof(dropProbability), dropProbability, "the dropping probability p must be in [0, 1): p = 1 drops every pixel");
        DropProbability = dropProbability;
    }

    /// <summary>p, the probability that a pixel is set to 0.</summary>
    public double DropProbability { get; }

    public string Describe() => $"bernoulli_suppression(p={DropProbability})";

    public SampleSet Draw(Tensor input, long target, int count, Generator generator)
    {
        using var scope = NewDisposeScope();
        // mask [n, 1, H, W] for [1, C, H, W] inputs (shared across channels), [n, d] for [1, d]
        var maskShape = input.shape.Skip(1).Prepend(count).ToArray();
        if (maskShape.Length >= 3) maskShape[1] = 1;
        var keep = rand(maskShape, ScalarType.Float64, input.device, generator: generator).ge(DropProbability);
        var set = new SampleSet(input * keep.to(input.dtype), Weights.Uniform(count, input.device));
        set.Points.MoveToOuterDisposeScope();
        set.Weights.MoveToOuterDisposeScope();
        return set;
    }
}
