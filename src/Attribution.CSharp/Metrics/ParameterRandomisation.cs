using TorchSharp;
using Attribution.Methods;
using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Metrics;

/// <summary>How maps are brought to [0, 1] before they are compared.</summary>
public enum MapScaling
{
    /// <summary>|m| summed over channels, divided by its maximum (Adebayo et al.'s absolute-value maps). An all-zero map stays 0.</summary>
    Absolute,
    /// <summary>m summed over channels, min-max scaled to [0, 1] (their signed maps). A constant map becomes 0.</summary>
    MinMax,
}

/// <summary>
/// The map after re-initialising <c>Randomised</c> (cumulatively, from the output backwards), compared with
/// the original map of each input.
/// </summary>
/// <param name="Stage">The last stage re-initialised.</param>
/// <param name="Randomised">Every stage re-initialised so far, output first.</param>
/// <param name="Ssim">Per input, mean SSIM between the scaled original and randomised maps (data range 1).</param>
/// <param name="Spearman">Per input, Spearman rank correlation of the scaled maps; NaN when either is constant.</param>
public sealed record RandomisationStage(string Stage, IReadOnlyList<string> Randomised, double[] Ssim, double[] Spearman)
{
    public double MeanSsim => Ssim.Average();
    public double MeanSpearman => Spearman.Where(v => !double.IsNaN(v)).DefaultIfEmpty(double.NaN).Average();
}

/// <summary>
/// Cascading parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps", Sec. 3.1; InputIBA,
/// Zhang et al. 2021, Sec. 4.3 and Fig. 3): re-initialise the model's parameter stages from the output towards the
/// input, one more stage each time, recompute the maps, and compare each with the original map by SSIM and by
/// Spearman rank correlation. A method that explains the model should lose its similarity as the weights go.
/// <para>The work happens on a copy: a fresh model from the caller's factory, loaded with a clone of the
/// caller's state dict; the caller's model is never changed. Stage s draws its new parameters from a generator
/// seeded with <see cref="Runtime.Seeds.Derive"/>(seed, "randomise/" + s).</para>
/// <para>Defaults: maps scaled with <see cref="MapScaling.Absolute"/> to [0, 1]; SSIM with Wang et al.'s
/// window 11, sigma 1.5, K1 0.01, K2 0.03 and data range 1.</para>
/// </summary>
public sealed class ParameterRandomisation
{
    public ParameterRandomisation(MapScaling scaling = MapScaling.Absolute) => Scaling = scaling;

    public MapScaling Scaling { get; }

    /// <summary>
    /// Runs the cascade. <paramref name="createBlank"/> builds a model of the same architecture (its parameters are
    /// overwritten); <paramref name="explain"/> returns maps [B, C, H, W] for a model (the same inputs every time).
    /// Returns one entry per parameter stage, output first.
    /// </summary>
    public IReadOnlyList<RandomisationStage> Run<TModel>(TModel model, Func<TModel> createBlank, Func<TModel, Tensor> explain, long seed)
        where TModel : nn.Module<Tensor, Tensor>, ILayeredModel
    {
        using var scope = NewDisposeScope();
        var device = model.parameters().FirstOrDefault()?.device ?? CPU;
        var copy = createBlank();
        if (ReferenceEquals(copy, model)) throw new ArgumentException("createBlank must build a new model, not return the caller's");
        copy.to(device);
        var cloned = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        copy.load_state_dict(cloned);
        copy.eval();
        var original = Scale(explain(copy));
        var stages = new List<RandomisationStage>();
        var randomised = new List<string>();
        foreach (var stage in copy.ParameterStages.Reverse())
        {
            using var stageScope = NewDisposeScope();
            using (var generator = Runtime.Seeds.Generator(seed, $"randomise/{stage}", device))
                copy.Reinitialise(stage, generator);
            randomised.Add(stage);
            var maps = Scale(explain(copy));
            stages.Add(new RandomisationStage(stage, randomised.ToArray(), Metrics.Ssim.Mean(original, maps, dataRange: 1.0), Spearman(original, maps)));
        }
        copy.Dispose();
        return stages;
    }

    /// <summary>The cascade for an attribution method explaining <paramref name="targets"/> of <paramref name="inputs"/>.</summary>
    public IReadOnlyList<RandomisationStage> Run<TModel>(TModel model, Func<TModel> createBlank, IAttributionMethod method,
                                                          Tensor inputs, Tensor targets, ExplainOptions options, long seed)
        where TModel : nn.Module<Tensor, Tensor>, ILayeredModel =>
        Run(model, createBlank, m =>
        {
            using var explanation = method.Explain(m, inputs, targets, options);
            return explanation.Maps.detach().clone();
        }, seed);

    /// <summary>Maps [B, C, H, W] reduced over channels and scaled to [0, 1] per map: [B, 1, H, W] float64 on the CPU.</summary>
    public Tensor Scale(Tensor maps)
    {
        if (maps.dim() != 4) throw new ArgumentException($"maps must be [B, C, H, W]; got [{string.Join(", ", maps.shape)}]");
        using var scope = NewDisposeScope();
        var m = maps.detach().cpu().to(ScalarType.Float64);
        Tensor scaled;
        if (Scaling == MapScaling.Absolute)
        {
            var a = m.abs().sum([1], keepdim: true);
            var top = a.flatten(1).amax([1]).view(-1, 1, 1, 1);
            scaled = where(top.gt(0), a / top.clamp_min(1e-300), zeros_like(a));
        }
        else
        {
            var s = m.sum([1], keepdim: true);
            var lo = s.flatten(1).amin([1]).view(-1, 1, 1, 1);
            var span = s.flatten(1).amax([1]).view(-1, 1, 1, 1) - lo;
            scaled = where(span.gt(0), (s - lo) / span.clamp_min(1e-300), zeros_like(s));
        }
        return scaled.MoveToOuterDisposeScope();
    }

    static double[] Spearman(Tensor a, Tensor b)
    {
        long n = a.shape[0];
        var fa = a.reshape(n, -1).to(ScalarType.Float32);
        var fb = b.reshape(n, -1).to(ScalarType.Float32);
        var result = new double[n];
        for (long i = 0; i < n; i++)
            result[i] = RankCorrelation.Spearman(fa[i].data<float>().ToArray(), fb[i].data<float>().ToArray());
        return result;
    }
}
