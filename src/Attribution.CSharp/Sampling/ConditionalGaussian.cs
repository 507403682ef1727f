using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>What the features outside the explained subset do in a <see cref="ConditionalGaussian"/>.</summary>
public enum ConditionalRest
{
    /// <summary>z2 = x2: only the subset moves, z1 ~ mu_1(. | x2) (Cor. 4.2, Eq. 17).</summary>
    RestFixed,
    /// <summary>z2 ~ N(x2, Sigma_22), then z1 ~ mu_1(. | z2): the pair is N(x, Sigma) (Cor. 4.2, Eq. 16).</summary>
    RestFromMarginal,
}

/// <summary>
/// Conditional subset sampling (Functional Information, Sec. 4.2, Cor. 4.2, Eq. 14-17). The flattened features
/// split into the explained subset S (x1) and the rest (x2); only x1 is perturbed, from the conditional Gaussian
/// z1 ~ N(x1 + S12 S22^-1 (z2 - x2), S11 - S12 S22^-1 S21). In <see cref="ConditionalRest.RestFixed"/> z2 = x2
/// (so the mean is x1); in <see cref="ConditionalRest.RestFromMarginal"/> z2 is drawn first from N(x2, S22).
/// <para>C for the Fisher statistic is the covariance of the measure sampled. RestFixed: the conditional
/// covariance S11 - S12 S22^-1 S21 on S and 0 elsewhere: the measure is mu_1(. | x2), and Eq. 17 bounds its
/// entropy by its own Fisher information, in which only the moving features have a gradient term.
/// RestFromMarginal: the full Sigma. The points are then distributed as N(x, Sigma), and Eq. 16 (proved in
/// App. A.2, Eq. 36-37, by Fubini on Thm 4.1) is the bound Ent_mu(f) &lt;= E_z2[I(f | z2)]/2 with the inner
/// product &lt;Sigma grad f, grad f&gt; of the full covariance; the Schur complement alone would bound only
/// the conditional entropies, whose average is at most Ent_mu(f).</para>
/// <para>The factors are computed once: Cholesky of the Schur complement (and of S22, for the marginal mode)
/// with jitter as in <see cref="ClassCovariance"/>; the covariance applied in the statistic is the one the
/// jittered factors sample from. Sigma is [D, D] (every class) or [K, D, D] (one per explained class), over the
/// flattened input; pass s Sigma for a scaled measure.</para>
/// </summary>
public sealed class ConditionalGaussian : IGaussianSampler, IDisposable
{
    readonly Tensor inSubset, outOfSubset;  // feature indices of x1 and x2
    readonly Tensor conditionalFactors;     // [K, d1, d1], L1 L1^T = S11 - S12 S22^-1 S21 (+ jitter)
    readonly Tensor conditionalCovariances; // [K, d1, d1]
    readonly Tensor? regression;            // [K, d1, d2], S12 S22^-1
    readonly Tensor? restFactors;           // [K, d2, d2], L2 L2^T = S22 (+ jitter)
    readonly Tensor? jointCovariances;      // [K, D, D], what the marginal mode samples from

    /// <param name="covariance">Sigma, [D, D] or [K, D, D], D the number of features of one input.</param>
    /// <param name="subset">The explained features S, a bool mask [D] (or shaped like one input).</param>
    /// <param name="rest">What the other features do.</param>
    /// <param name="relativeJitter">Jitter as in <see cref="ClassCovariance"/>, relative to the mean diagonal.</param>
    public ConditionalGaussian(Tensor covariance, Tensor subset, ConditionalRest rest = ConditionalRest.RestFixed, double relativeJitter = 1e-5)
    {
        if (relativeJitter < 0) throw new ArgumentOutOfRangeException(nameof(relativeJitter), relativeJitter, "jitter must be non-negative");
        var sigmas = covariance.shape.Length == 2 ? covariance.unsqueeze(0) : covariance;
        if (sigmas.shape.Length != 3 || sigmas.shape[1] != sigmas.shape[2])
            throw new ArgumentException($"the covariance must be [D, D] or [K, D, D], got [{string.Join(", ", covariance.shape)}]");
        long d = sigmas.shape[1];
        var mask = subset.flatten().to(ScalarType.Bool).to(sigmas.device);
        if (mask.shape[0] != d) throw new ArgumentException($"the subset has {mask.shape[0]} features, the covariance {d}");
        Rest = rest; Features = d;
        using (var scope = NewDisposeScope())
        {
            var one = mask.nonzero().squeeze(1);
            var two = mask.logical_not().nonzero().squeeze(1);
            long d1 = one.shape[0], d2 = two.shape[0];
            if (d1 == 0) throw new ArgumentException("the subset is empty: there is nothing to perturb");
            SubsetSize = d1;
            var factors1 = new List<Tensor>(); var covariances1 = new List<Tensor>();
            var regressions = new List<Tensor>(); var factors2 = new List<Tensor>(); var joints = new List<Tensor>();
            var jitters = new List<double>();
            for (long k = 0; k < sigmas.shape[0]; k++)
            {
                var sigma = sigmas[k].to(ScalarType.Float64);
                var s11 = sigma.index_select(0, one).index_select(1, one);
                Tensor schur = s11, a = zeros(d1, 0, ScalarType.Float64, sigma.device), s22 = zeros(0, 0, ScalarType.Float64, sigma.device);
                if (d2 > 0)
                {
                    var s12 = sigma.index_select(0, one).index_select(1, two);
                    s22 = sigma.index_select(0, two).index_select(1, two);
                    var (s22j, l2, j2) = CovarianceModels.JitteredCholesky(s22, relativeJitter, $"class {k}, rest of the features");
                    a = linalg.solve(s22j, s12.t()).t();                    // S12 S22^-1
                    schur = s11 - a.matmul(s12.t());
                    schur = (schur + schur.t()) / 2;
                    s22 = s22j;
                    factors2.Add(l2);
                    jitters.Add(j2);
                }
                var (schurJ, l1, j1) = CovarianceModels.JitteredCholesky(schur, relativeJitter, $"class {k}, conditional on the rest");
                jitters.Add(j1);
                factors1.Add(l1); covariances1.Add(schurJ); regressions.Add(a);
                if (rest == ConditionalRest.RestFromMarginal)
                {
                    // the joint the two factors sample from: Sigma up to the jitter
                    var joint = zeros(d, d, ScalarType.Float64, sigma.device);
                    var aS22 = a.matmul(s22);
                    joint.index_put_(schurJ + aS22.matmul(a.t()), TensorIndex.Tensor(one.unsqueeze(1)), TensorIndex.Tensor(one.unsqueeze(0)));
                    if (d2 > 0)
                    {
                        joint.index_put_(aS22, TensorIndex.Tensor(one.unsqueeze(1)), TensorIndex.Tensor(two.unsqueeze(0)));
                        joint.index_put_(aS22.t(), TensorIndex.Tensor(two.unsqueeze(1)), TensorIndex.Tensor(one.unsqueeze(0)));
                        joint.index_put_(s22, TensorIndex.Tensor(two.unsqueeze(1)), TensorIndex.Tensor(two.unsqueeze(0)));
                    }
                    joints.Add(joint);
                }
            }
            Jitters = jitters;
            inSubset = one.MoveToOuterDisposeScope();
            outOfSubset = two.MoveToOuterDisposeScope();
            conditionalFactors = stack(factors1).to(ScalarType.Float32).MoveToOuterDisposeScope();
            conditionalCovariances = stack(covariances1).to(ScalarType.Float32).MoveToOuterDisposeScope();
            if (d2 > 0 && rest == ConditionalRest.RestFromMarginal)
            {
                regression = stack(regressions).to(ScalarType.Float32).MoveToOuterDisposeScope();
                restFactors = stack(factors2).to(ScalarType.Float32).MoveToOuterDisposeScope();
            }
            if (rest == ConditionalRest.RestFromMarginal) jointCovariances = stack(joints).to(ScalarType.Float32).MoveToOuterDisposeScope();
        }
    }

    public ConditionalRest Rest { get; }
    /// <summary>D, the number of features of one input.</summary>
    public long Features { get; }
    /// <summary>d1, the number of explained (perturbed) features.</summary>
    public long SubsetSize { get; }
    /// <summary>Jitters added (per class: the rest's, then the conditional's).</summary>
    public IReadOnlyList<double> Jitters { get; }

    /// <summary>S11 - S12 S22^-1 S21 (+ jitter) of class k, [d1, d1] (float32).</summary>
    public Tensor ConditionalCovariance(long k) => conditionalCovariances[Class(k)];

    public string Describe() => $"conditional_gaussian(features={SubsetSize}/{Features}, rest={Rest})";

    public SampleSet Draw(Tensor input, long target, int count, Generator generator)
    {
        using var scope = NewDisposeScope();
        if (input.numel() != Features) throw new ArgumentException($"input [{string.Join(", ", input.shape)}] has {input.numel()} features, the covariance {Features}");
        long k = Class(target);
        var x = input.reshape(1, Features);
        var one = inSubset.to(input.device);
        var points = x.expand(count, Features).clone();
        var eps1 = randn([count, SubsetSize], input.dtype, input.device, generator: generator);
        var z1 = x.index_select(1, one) + eps1.matmul(conditionalFactors[k].to(input.dtype).to(input.device).t());
        if (restFactors is not null)
        {
            var two = outOfSubset.to(input.device);
            var eps2 = randn([count, outOfSubset.shape[0]], input.dtype, input.device, generator: generator);
            var dz2 = eps2.matmul(restFactors[k].to(input.dtype).to(input.device).t());
            // z1 | z2 has mean x1 + S12 S22^-1 (z2 - x2)
            z1 = z1 + dz2.matmul(regression![k].to(input.dtype).to(input.device).t());
            points.index_copy_(1, two, x.index_select(1, two) + dz2);
        }
        points.index_copy_(1, one, z1);
        var set = new SampleSet(points.reshape(input.shape.Skip(1).Prepend(count).ToArray()), Weights.Uniform(count, input.device));
        set.Points.MoveToOuterDisposeScope();
        set.Weights.MoveToOuterDisposeScope();
        return set;
    }

    /// <summary>C g per row: the conditional covariance on S (0 elsewhere) when the rest is fixed, Sigma otherwise.</summary>
    public Tensor ApplyCovariance(Tensor gradients, Tensor targets)
    {
        using var scope = NewDisposeScope();
        long m = gradients.shape[0];
        var flat = gradients.reshape(m, Features);
        var one = inSubset.to(gradients.device);
        var result = zeros_like(flat);
        foreach (var target in targets.unique().Item1.cpu().data<long>().ToArray())
        {
            long k = Class(target);
            var rows = targets.eq(target).nonzero().squeeze(1);
            var g = flat.index_select(0, rows);
            if (jointCovariances is not null)
                result.index_copy_(0, rows, g.matmul(jointCovariances[k].to(g.dtype).to(g.device)));
            else
            {
                var applied = zeros_like(g);
                applied.index_copy_(1, one, g.index_select(1, one).matmul(conditionalCovariances[k].to(g.dtype).to(g.device)));
                result.index_copy_(0, rows, applied);
            }
        }
        return result.reshape(gradients.shape).MoveToOuterDisposeScope();
    }

    long Class(long target)
    {
        long classes = conditionalFactors.shape[0];
        if (classes == 1) return 0;
        if (target < 0 || target >= classes) throw new ArgumentOutOfRangeException(nameof(target), target, $"there are covariances for {classes} classes");
        return target;
    }

    public void Dispose()
    {
        inSubset.Dispose(); outOfSubset.Dispose(); conditionalFactors.Dispose(); conditionalCovariances.Dispose();
        regression?.Dispose(); restFactors?.Dispose(); jointCovariances?.Dispose();
    }
}
