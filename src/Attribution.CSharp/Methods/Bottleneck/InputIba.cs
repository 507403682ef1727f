using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>What InputIBA reports as the map.</summary>
public enum InputIbaMap
{
    /// <summary>The input bottleneck's capacity KL_k of Proposition 3, in bits, summed over channels (images) and given to every channel.</summary>
    CapacityBits,
    /// <summary>The optimal input mask Lambda* (the paper's figures and the reference code's output), averaged over channels (images) and given to every channel.</summary>
    Mask,
}

/// <summary>
/// InputIBA (Zhang et al. 2021, "Fine-grained neural network explanation by identifying input features with predictive
/// information", Sec. 3), three stages per input, all inputs of a chunk optimised together:
/// <list type="number">
/// <item>the feature bottleneck (IBA, <see cref="InformationBottleneck"/>, beta_feat 10) after a stage of an
/// <see cref="ILayeredModel"/> gives lambda*, the optimal feature mask, and Z* = lambda* R + (1 - lambda*) eps;</item>
/// <item>a Wasserstein GAN (<see cref="InputMaskGan"/>, Eq. 3) fits the input mask lambda_G so that the features of
/// Z_G = lambda_G x + (1 - lambda_G) eps_G match P(Z*) (the paper's Z*, with lambda*: the reference code feeds the
/// stage-1 capacity there instead);</item>
/// <item>the input bottleneck (<see cref="InputBottleneck"/>, beta_input 20, 60 steps) with the prior of Proposition 3
/// built from lambda_G gives Lambda* and its capacity.</item>
/// </list>
/// The map is <see cref="Map"/>: the input capacity in bits summed over channels, or Lambda*. theta (the GAN's mask
/// logits) starts from the stage-1 capacity map in bits per input pixel (summed over channels, scaled by the area ratio,
/// bilinearly upsampled), as in the reference; for text (<see cref="InputLayout.TokenSequence"/>) with a per-position
/// stage [B, T, H], the stage-1 capacity in bits summed over H at each position, given to every embedding coordinate of
/// that position (the reference's text initialisation, in bits); 0 (lambda_G = 1/2) otherwise.
/// Inputs of any shape [B, ...] (text: a text model's embeddings [B, T, E], or their [B, T, 1, E] view through a
/// <see cref="ReshapedModel"/>; the text models are layered over the embeddings, see <see cref="TextDefaultStage"/> and
/// <see cref="ForText"/>). The critic is convolutional on feature maps [K, h, w], a 1-D convolution along the positions
/// of per-position text features [T, H], and a small MLP otherwise (<see cref="FeatureCritic"/>). Randomness: stage 1 uses the generator IBA uses
/// for the input (so lambda* is IBA's), stages 2 and 3 their own, all derived from (Seed, input key): an input's map
/// does not depend on its batch. A chunk holds BatchSize / max(copies, WGAN batch) inputs; every optimisation step is one
/// forward and one backward pass over the chunk. Diagnostics per input: <c>capacity_bits</c> (mean input capacity),
/// <c>feature_capacity_bits</c> (stage 1), <c>generator_mask_mean</c> (mean lambda_G), <c>wasserstein_first_epoch</c> and
/// <c>wasserstein_last_epoch</c> (the critic's mean estimate over the first and the last epoch; NaN without epochs).
/// </summary>
public sealed class InputIba : IAttributionMethod
{
    /// <summary>
    /// The feature bottleneck's stage on the recurrent text models (<see cref="TextLstm"/>, <see cref="TextBiLstm"/>): the
    /// per-position outputs of the last LSTM layer, before pooling (the paper's IMDB model: a 4-layer LSTM with the
    /// bottleneck on the last layer's outputs, the reference's <c>rnn_4</c>). <see cref="TextCnn"/> calls its
    /// per-position stage <c>conv</c>, <see cref="TextTransformer"/> <c>norm</c>.
    /// </summary>
    public const string TextDefaultStage = "lstm";

    /// <summary>
    /// InputIBA with the text settings of the reference implementation's IMDB configuration, where the paper is silent
    /// (its text hyper-parameters are in an appendix we do not have): feature bottleneck beta 0.5 (10 Adam steps at
    /// learning rate 1, as for images); WGAN as for images except the mask logits' RMSProp rate 0.03; input bottleneck
    /// beta 0.01, 20 Adam steps at learning rate 0.5, no smoothing. Statistics: <paramref name="featureStatistics"/> at a
    /// per-position stage (<see cref="TextDefaultStage"/>), <paramref name="inputStatistics"/> per embedding coordinate
    /// (<see cref="InputStatistics.EstimateTokens"/>).
    /// </summary>
    public static InputIba ForText(ActivationStatistics featureStatistics, InputStatistics inputStatistics, InputIbaMap map = InputIbaMap.CapacityBits, int epochs = 20) =>
        new(new InformationBottleneck(featureStatistics, beta: 0.5),
            new InputMaskGan(epochs, maskLearningRate: 0.03),
            new InputBottleneck(inputStatistics, beta: 0.01, steps: 20, learningRate: 0.5, sigma: 0.0),
            map);

    /// <summary>The paper's defaults for all three stages (its ImageNet settings).</summary>
    public InputIba(ActivationStatistics featureStatistics, InputStatistics inputStatistics, InputIbaMap map = InputIbaMap.CapacityBits)
        : this(new InformationBottleneck(featureStatistics), new InputMaskGan(), new InputBottleneck(inputStatistics), map) { }

    public InputIba(InformationBottleneck featureBottleneck, InputMaskGan gan, InputBottleneck inputBottleneck, InputIbaMap map = InputIbaMap.CapacityBits)
    {
        ArgumentNullException.ThrowIfNull(featureBottleneck);
        ArgumentNullException.ThrowIfNull(gan);
        ArgumentNullException.ThrowIfNull(inputBottleneck);
        FeatureBottleneck = featureBottleneck; Gan = gan; InputBottleneck = inputBottleneck; Map = map;
    }

    public InformationBottleneck FeatureBottleneck { get; }
    public InputMaskGan Gan { get; }
    public InputBottleneck InputBottleneck { get; }
    public InputIbaMap Map { get; }
    public string Stage => FeatureBottleneck.Stage;

    public string Describe() =>
        $"input_iba: stage 1 {FeatureBottleneck.Describe()}; stage 2 {Gan.Describe()}; stage 3 {InputBottleneck.Describe()} with the prior of Prop. 3; " +
        $"map: {(Map == InputIbaMap.CapacityBits ? "input capacity in bits summed over channels" : "the input mask Lambda*")}";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        if (model is not ILayeredModel layered)
            throw new ArgumentException($"input_iba needs a model that can be cut at a named stage (Attribution.Models.ILayeredModel); {model.GetType().Name} is not one");
        if (!layered.Stages.Contains(Stage))
            throw new ArgumentException($"input_iba: unknown stage '{Stage}'; the model's stages: {string.Join(", ", layered.Stages)}");
        if (inputs.dim() < 2) throw new ArgumentException($"input_iba: inputs are [B, ...], got [{string.Join(", ", inputs.shape)}]");
        PerturbationEngine.CheckTargets(inputs, targets);
        options.Check();
        model.eval();
        long count = inputs.shape[0];
        var keys = options.Keys(count);
        var layout = InputLayouts.Of(model, inputs);
        long perChunk = Math.Max(1, options.PointsPerChunk(inputs) / Math.Max(Math.Max(FeatureBottleneck.Copies, InputBottleneck.Copies), Gan.BatchSize));
        using var frozen = FrozenParameters.Of(model);
        using var scope = NewDisposeScope();
        var maps = new List<Tensor>();
        var names = new[] { "capacity_bits", "feature_capacity_bits", "generator_mask_mean", "wasserstein_first_epoch", "wasserstein_last_epoch" };
        var diagnostics = names.ToDictionary(n => n, _ => new List<Tensor>());
        for (long start = 0; start < count; start += perChunk)
        {
            using var chunkScope = NewDisposeScope();
            long n = Math.Min(perChunk, count - start);
            var (map, values) = Chunk(layered, inputs.narrow(0, start, n), targets.narrow(0, start, n), keys[(int)start..(int)(start + n)], options, layout);
            maps.Add(map.MoveToOuterDisposeScope());
            foreach (var name in names) diagnostics[name].Add(values[name].MoveToOuterDisposeScope());
        }
        var result = names.ToDictionary(n => n, n => cat(diagnostics[n], 0).MoveToOuterDisposeScope());
        return new Explanation(cat(maps, 0).to(inputs.dtype).MoveToOuterDisposeScope(), result);
    }

    (Tensor Map, Dictionary<string, Tensor> Diagnostics) Chunk(ILayeredModel model, Tensor x, Tensor targets, long[] keys, ExplainOptions options, InputLayout layout)
    {
        var network = (nn.Module<Tensor, Tensor>)model;
        double ln2 = Math.Log(2.0);
        var (featureMask, featureCapacity) = FeatureBottleneck.FitChunk(model, x, targets, keys, options);
        var initialLogits = InitialLogits(featureCapacity, x, layout);
        var ganGenerators = keys.Select(k => Runtime.Seeds.Generator(options.Seed, $"input/{k}/input_iba/gan", x.device)).ToArray();
        var inputGenerators = keys.Select(k => Runtime.Seeds.Generator(options.Seed, $"input/{k}/input_iba/input", x.device)).ToArray();
        try
        {
            using var fit = Gan.Fit(model, Stage, x, featureMask, FeatureBottleneck.Statistics, InputBottleneck.Noise, initialLogits, ganGenerators);
            var (lambda, capacity) = InputBottleneck.Fit(network, x, targets, fit.Mask, inputGenerators);
            using var noGrad = no_grad();
            var map = Map == InputIbaMap.CapacityBits
                ? InputBottleneck.ToMap(capacity / ln2, layout)
                : (layout == InputLayout.Image ? lambda.mean([1L], keepdim: true).expand_as(lambda).contiguous() : lambda);
            long n = x.shape[0];
            int perEpoch = Gan.Epochs > 0 ? Gan.CriticSteps / Gan.Epochs : 0;
            var diagnostics = new Dictionary<string, Tensor>
            {
                ["capacity_bits"] = (capacity / ln2).flatten(1).mean([1L]),
                ["feature_capacity_bits"] = (featureCapacity / ln2).flatten(1).mean([1L]),
                ["generator_mask_mean"] = fit.Mask.flatten(1).mean([1L]),
                ["wasserstein_first_epoch"] = perEpoch > 0 ? fit.Wasserstein.narrow(0, 0, perEpoch).mean([0L]) : full(n, double.NaN, dtype: x.dtype, device: x.device),
                ["wasserstein_last_epoch"] = perEpoch > 0 ? fit.Wasserstein.narrow(0, fit.Wasserstein.shape[0] - perEpoch, perEpoch).mean([0L]) : full(n, double.NaN, dtype: x.dtype, device: x.device),
            };
            return (map, diagnostics);
        }
        finally
        {
            foreach (var g in ganGenerators) g.Dispose();
            foreach (var g in inputGenerators) g.Dispose();
        }
    }

    /// <summary>
    /// theta_0: for an image and a feature map, the stage-1 capacity in bits per input pixel (summed over channels, times
    /// (h w) / (H W), bilinearly upsampled; the reference's initialisation), the same in every input channel; for text and a
    /// per-position stage [B, T, H] with the input's T, the capacity in bits summed over H, the same in every coordinate
    /// of the position; else 0.
    /// </summary>
    static Tensor InitialLogits(Tensor featureCapacityNats, Tensor x, InputLayout layout)
    {
        if (layout == InputLayout.TokenSequence)
        {
            if (featureCapacityNats.dim() != 3 || featureCapacityNats.shape[1] != x.shape[1]) return zeros_like(x);
            using var textScope = NewDisposeScope();
            var perPosition = featureCapacityNats.sum(2) / Math.Log(2.0);                       // [B, T]
            var shape = x.shape.Select((d, i) => i < 2 ? d : 1L).ToArray();                    // [B, T, 1, ...]
            return perPosition.reshape(shape).expand_as(x).contiguous().MoveToOuterDisposeScope();
        }
        if (layout != InputLayout.Image || featureCapacityNats.dim() != 4) return zeros_like(x);
        using var scope = NewDisposeScope();
        long h = featureCapacityNats.shape[2], w = featureCapacityNats.shape[3], height = x.shape[2], width = x.shape[3];
        var bits = featureCapacityNats.sum(1, keepdim: true) / Math.Log(2.0) * ((double)(h * w) / (height * width));
        var map = nn.functional.interpolate(bits, [height, width], mode: InterpolationMode.Bilinear, align_corners: false);
        return map.expand_as(x).contiguous().MoveToOuterDisposeScope();
    }
}
