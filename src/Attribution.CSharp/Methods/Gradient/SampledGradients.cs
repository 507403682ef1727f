using Attribution.Sampling;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Sampler x statistic: draw points around each input, take grad f at each, keep a statistic per feature,
/// optionally multiply by the input (or input minus baseline), optionally take the absolute value.
/// SmoothGrad, SmoothGradSQ, VarGrad, Functional Information, Integrated Gradients, Saliency and
/// Gradient x Input are all instances (see <see cref="Presets"/>); any sampler works with any statistic
/// that it supports.
/// <para>With a Gaussian sampler and probability outputs the Monte-Carlo estimates of the functional
/// entropy Ent_mu(f) = E[f log f] - E[f] log E[f] and of I_mu(f)/2 = E[(C g).g / f]/2 are reported per input
/// as the diagnostics <c>entropy</c> and <c>half_fisher_information</c>: the log-Sobolev inequality
/// (Thm 4.1) says the first is at most the second.</para>
/// <para>A path method (input minus baseline: Integrated Gradients) reports per input the diagnostic
/// <c>completeness_gap</c> = |sum of the map - (f(x) - f(baseline))|: zero for the exact integral (Sundararajan et al.
/// 2017, completeness), so it measures the quadrature's error (Captum's convergence delta), in f's units.</para>
/// <para>A method that draws at random (4 samples or more, not a path) reports per input the diagnostic
/// <c>split_half_spearman</c>: the Spearman correlation between the map of its first half of samples and the map of the
/// second half. Near 1, the samples agree and the map has settled; well below 1, more samples would change it. From the
/// same halves come <c>mc_standard_error</c> (the root-mean-square Monte-Carlo standard error of the map's features,
/// in map units) and <c>mc_relative_error</c> (that over the map's root mean square).</para>
/// </summary>
public sealed class SampledGradients : IAttributionMethod
{
    public SampledGradients(string name, ISampler sampler, int samples, StatisticKind statistic,
                            Multiplier multiplier = Multiplier.None, bool absolute = false, double baseline = 0.0)
    {
        if (!double.IsFinite(baseline)) throw new ArgumentOutOfRangeException(nameof(baseline), baseline, $"{name}: the baseline must be finite");
        if (baseline != 0.0 && multiplier != Multiplier.Input)
            throw new ArgumentException($"{name}: a constant baseline {baseline} is subtracted from the input only by Multiplier.Input, got {multiplier}");
        if (samples < 1) throw new ArgumentOutOfRangeException(nameof(samples), samples, $"{name}: at least one sample is needed");
        if (statistic == StatisticKind.Variance && samples < 2) throw new ArgumentOutOfRangeException(nameof(samples), samples, $"{name}: a variance needs at least two samples");
        if (statistic == StatisticKind.FisherRatio && sampler is not IGaussianSampler)
            throw new ArgumentException($"{name}: the Fisher statistic (C grad f).grad f / f needs a Gaussian sampler, got {sampler.Describe()}");
        if (multiplier == Multiplier.InputMinusBaseline && sampler is not IBaselineSampler)
            throw new ArgumentException($"{name}: 'input minus baseline' needs a sampler with a baseline (a path), got {sampler.Describe()}");
        Name = name; Sampler = sampler; Samples = samples; Statistic = statistic; Multiplier = multiplier; Absolute = absolute; Baseline = baseline;
    }

    public string Name { get; }
    public ISampler Sampler { get; }
    public int Samples { get; }
    public StatisticKind Statistic { get; }
    public Multiplier Multiplier { get; }
    public bool Absolute { get; }
    /// <summary>The constant b of <see cref="Multiplier.Input"/>: the statistic is multiplied by x - b (0: by x).</summary>
    public double Baseline { get; }

    public string Describe() =>
        $"{Name}: {Statistic} of grad f over {Samples} x {Sampler.Describe()}" +
        (Multiplier == Multiplier.None ? "" : Multiplier == Multiplier.Input && Baseline != 0.0 ? $", times (input - {Baseline})" : $", times {Multiplier}") + (Absolute ? ", absolute value" : "");

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        if (Statistic == StatisticKind.FisherRatio && options.Output != OutputFunction.Probability)
            throw new ArgumentException($"{Name} divides by f, which must be positive: explain the softmax probability (output: probability), not the logit");
        using var scope = NewDisposeScope();
        bool splitHalf = Samples >= 4 && Sampler is not IBaselineSampler;
        var sums = new Sums(inputs, needSquares: Statistic is StatisticKind.MeanSquare or StatisticKind.Variance,
                            needLogSobolev: Sampler is IGaussianSampler && options.Output == OutputFunction.Probability, splitHalf);
        GradientEngine.Sweep(model, inputs, targets, Sampler, Samples, options, chunk => Accumulate(sums, chunk));

        var map = MapOf(sums.First, sums.Second, inputs);

        var diagnostics = new Dictionary<string, Tensor>();
        if (sums.HalfFirst is { } halfFirst)
        {
            // Each half's weighted means: the first half's sums over its weight, the rest over the rest of the weight.
            var shape = GradientEngine.Broadcastable(sums.HalfWeight!, sums.First);
            var weightA = sums.HalfWeight!.view(shape);
            var weightB = (sums.TotalWeight!.view(shape) - weightA);
            var mapA = MapOf(halfFirst / weightA * sums.TotalWeight!.view(shape), sums.HalfSecond is null ? null : sums.HalfSecond / weightA * sums.TotalWeight!.view(shape), inputs);
            var mapB = MapOf((sums.First - halfFirst) / weightB * sums.TotalWeight!.view(shape),
                             sums.Second is null ? null : (sums.Second - sums.HalfSecond!) / weightB * sums.TotalWeight!.view(shape), inputs);
            diagnostics["split_half_spearman"] = SplitHalfSpearman(mapA, mapB).MoveToOuterDisposeScope();
            var (standardError, relativeError) = MonteCarloError(mapA, mapB, map);
            diagnostics["mc_standard_error"] = standardError.MoveToOuterDisposeScope();
            diagnostics["mc_relative_error"] = relativeError.MoveToOuterDisposeScope();
        }
        if (Multiplier == Multiplier.InputMinusBaseline)
        {
            var baseline = ((IBaselineSampler)Sampler).Baseline(inputs).expand_as(inputs);
            int chunk = options.PointsPerChunk(inputs);
            var rise = OutputValues.Of(model, inputs, targets, options.Output, chunk)
                     - OutputValues.Of(model, baseline, targets, options.Output, chunk);
            var total = map.to(ScalarType.Float64).reshape(map.shape[0], -1).sum(1);
            diagnostics["completeness_gap"] = (total - rise.to(total.device)).abs().MoveToOuterDisposeScope();
        }
        if (sums.ValueSum is { } mf)
        {
            // Ent = E[f log f] - E[f] log E[f]; E[f log f] from log f where f underflows.
            var entropy = sums.ValueLogValueSum! - mf * mf.log();
            diagnostics["entropy"] = entropy.MoveToOuterDisposeScope();
            diagnostics["half_fisher_information"] = (sums.FisherTotal! * 0.5).MoveToOuterDisposeScope();
        }
        return new Explanation(map.MoveToOuterDisposeScope(), diagnostics);
    }

    /// <summary>The finished map from the weighted sums of gradients (and of their squares): the statistic, the multiplier, the absolute value.</summary>
    Tensor MapOf(Tensor first, Tensor? second, Tensor inputs)
    {
        var map = Statistic switch
        {
            StatisticKind.Mean => first,
            StatisticKind.MeanSquare => second!,
            StatisticKind.Variance => second! - first.square(),
            _ => first,
        };
        map = map.to(inputs.dtype);
        map = Multiplier switch
        {
            Multiplier.Input => Baseline == 0.0 ? map * inputs : map * (inputs - Baseline),
            Multiplier.InputMinusBaseline => map * (inputs - ((IBaselineSampler)Sampler).Baseline(inputs)),
            _ => map,
        };
        return Absolute ? map.abs() : map;
    }

    /// <summary>
    /// Per input, the Monte-Carlo standard error of the map from its two halves, at no extra cost: each half averages
    /// S/2 independent samples, so Var(A - B) = 4 Var(map) feature by feature, and ((A - B)/2)^2 estimates the map's
    /// variance. Averaged over the features it gives the root-mean-square standard error (map units, float64 [B]); the
    /// relative error divides it by the root mean square of the map itself. Exact in expectation for a mean of gradients;
    /// for a nonlinear statistic (a square, a variance, an absolute value) it is the first-order (delta-method) value.
    /// </summary>
    static (Tensor StandardError, Tensor RelativeError) MonteCarloError(Tensor a, Tensor b, Tensor map)
    {
        long count = a.shape[0];
        var half = ((a.to(ScalarType.Float64) - b.to(ScalarType.Float64)) * 0.5).reshape(count, -1);
        var standardError = half.square().mean([1]).sqrt();
        var scale = map.to(ScalarType.Float64).reshape(count, -1).square().mean([1]).sqrt();
        return (standardError, standardError / scale);
    }

    /// <summary>Per input, the Spearman correlation of two maps [B, ...] (float64 [B]).</summary>
    static Tensor SplitHalfSpearman(Tensor a, Tensor b)
    {
        long count = a.shape[0];
        var flatA = a.reshape(count, -1).to(ScalarType.Float32).cpu();
        var flatB = b.reshape(count, -1).to(ScalarType.Float32).cpu();
        var rho = new double[count];
        for (long i = 0; i < count; i++)
            rho[i] = Metrics.RankCorrelation.Spearman(flatA[i].data<float>().ToArray(), flatB[i].data<float>().ToArray());
        return tensor(rho, ScalarType.Float64).to(a.device);
    }

    // index_add_'s alpha, held for the process: an implicit Scalar temporary carries a finaliser that may run while
    // the native call still reads it (NOTES.md).
    static readonly TorchSharp.Scalar One = 1.0;

    void Accumulate(Sums sums, PointChunk chunk)
    {
        long m = chunk.Gradients.shape[0];
        var g = chunk.Gradients.reshape(m, -1);
        // A per-point multiplier (Expected Gradients' x - b_j) must multiply each gradient before the average:
        // E[(x - b) g] != E[x - b] E[g] when b varies. The Multiplier options stay as they are: they multiply
        // the finished statistic by one tensor per input, which is exact (and cheaper) when every point shares
        // the multiplier (x for Gradient x Input, x - b for IG's fixed baseline).
        if (chunk.Deltas is { } deltas) g = g * deltas.reshape(m, -1);
        Tensor? fisher = null;
        if (Statistic == StatisticKind.FisherRatio || sums.FisherTotal is not null)
            fisher = FisherTerms(chunk).reshape(m, -1);
        if (fisher is not null && chunk.Deltas is not null)
            throw new InvalidOperationException($"{Name}: {Sampler.Describe()} multiplies each point's gradient, which the Fisher statistic of a Gaussian does not define");

        var first = Statistic switch
        {
            StatisticKind.MeanAbsolute => g.abs(),
            StatisticKind.FisherRatio => fisher!,
            _ => g,
        };
        // Every per-input weighted sum of the chunk is one matrix product: rows of `reducer` hold each input's point
        // weights (and, for the split-half diagnostic, the same weights on its first half only), so the chunk's
        // [points, features] tensor is converted once and read once by a GEMM instead of by a chain of elementwise passes.
        // The sums stay float64: VarGrad's E[g^2] - E[g]^2 cancels where the gradient hardly varies.
        var reducer = Reducer(chunk, sums.HalfFirst is not null, out var halfWeights);
        long span = chunk.InputSpan;
        var rows = arange(chunk.FirstInput, chunk.FirstInput + span, ScalarType.Int64, g.device);
        var wide = first.to(ScalarType.Float64);
        var firstSums = reducer.matmul(wide);
        sums.First.view(sums.First.shape[0], -1).index_add_(0, rows, firstSums.narrow(0, 0, span), One);
        var secondSums = sums.Second is null ? null : reducer.matmul(ReferenceEquals(first, g) ? wide.square() : g.to(ScalarType.Float64).square());
        if (secondSums is not null) sums.Second!.view(sums.Second.shape[0], -1).index_add_(0, rows, secondSums.narrow(0, 0, span), One);
        if (sums.HalfFirst is not null)
        {
            // The first half of each input's samples (by its sample index), for the split-half diagnostic.
            sums.HalfFirst.view(sums.HalfFirst.shape[0], -1).index_add_(0, rows, firstSums.narrow(0, span, span), One);
            if (secondSums is not null) sums.HalfSecond!.view(sums.HalfSecond.shape[0], -1).index_add_(0, rows, secondSums.narrow(0, span, span), One);
            sums.HalfWeight!.index_add_(0, rows, halfWeights!.sum(1), One);
            sums.TotalWeight!.index_add_(0, rows, reducer.narrow(0, 0, span).sum(1), One);
        }
        if (sums.ValueSum is not null)
        {
            var weights = chunk.Weights.to(ScalarType.Float64);
            var f = chunk.Values.to(ScalarType.Float64);
            var logF = f.log().nan_to_num(0.0, 0.0, 0.0);   // f log f -> 0 as f -> 0
            sums.ValueSum.index_add_(0, chunk.InputIndex, f * weights, One);
            sums.ValueLogValueSum!.index_add_(0, chunk.InputIndex, f * logF * weights, One);
            sums.FisherTotal!.index_add_(0, chunk.InputIndex, fisher!.sum(1).to(ScalarType.Float64) * weights, One);
        }
    }

    /// <summary>
    /// [span, m] (or [2 span, m] with the split half): row i holds the weights of input FirstInput + i's points and
    /// zero elsewhere; the second block keeps only the points of each input's first half of samples.
    /// </summary>
    Tensor Reducer(PointChunk chunk, bool splitHalf, out Tensor? halfWeights)
    {
        long span = chunk.InputSpan, m = chunk.Weights.shape[0];
        var local = chunk.InputIndex - chunk.FirstInput;
        var weights = zeros([span, m], ScalarType.Float64, chunk.Gradients.device);
        weights.scatter_(0, local.unsqueeze(0), chunk.Weights.to(ScalarType.Float64).unsqueeze(0));
        halfWeights = null;
        if (!splitHalf) return weights;
        halfWeights = weights * chunk.SampleIndex!.lt(Samples / 2).to(weights.dtype).unsqueeze(0);
        return cat([weights, halfWeights], 0);
    }

    /// <summary>(C g)_i g_i / f = f (C grad log f)_i (grad log f)_i: finite where f underflows.</summary>
    Tensor FisherTerms(PointChunk chunk)
    {
        var gaussian = (IGaussianSampler)Sampler;
        var logGrad = chunk.LogGradients ?? throw new InvalidOperationException("the Fisher statistic needs probability outputs");
        var f = chunk.Values.view(GradientEngine.Broadcastable(chunk.Values, logGrad));
        return gaussian.ApplyCovariance(logGrad, chunk.Targets) * logGrad * f;
    }

    /// <summary>Running weighted sums per input (float64, on the inputs' device).</summary>
    sealed class Sums
    {
        public Sums(Tensor inputs, bool needSquares, bool needLogSobolev, bool splitHalf)
        {
            First = zeros(inputs.shape, ScalarType.Float64, inputs.device);
            Second = needSquares ? zeros(inputs.shape, ScalarType.Float64, inputs.device) : null;
            if (splitHalf)
            {
                HalfFirst = zeros(inputs.shape, ScalarType.Float64, inputs.device);
                HalfSecond = needSquares ? zeros(inputs.shape, ScalarType.Float64, inputs.device) : null;
                HalfWeight = zeros(inputs.shape[0], ScalarType.Float64, inputs.device);
                TotalWeight = zeros(inputs.shape[0], ScalarType.Float64, inputs.device);
            }
            if (needLogSobolev)
            {
                long b = inputs.shape[0];
                ValueSum = zeros(b, ScalarType.Float64, inputs.device);
                ValueLogValueSum = zeros(b, ScalarType.Float64, inputs.device);
                FisherTotal = zeros(b, ScalarType.Float64, inputs.device);
            }
        }
        public Tensor First { get; }
        public Tensor? Second { get; }
        public Tensor? ValueSum { get; }
        public Tensor? ValueLogValueSum { get; }
        public Tensor? FisherTotal { get; }
        public Tensor? HalfFirst { get; }
        public Tensor? HalfSecond { get; }
        public Tensor? HalfWeight { get; }
        public Tensor? TotalWeight { get; }
    }
}
