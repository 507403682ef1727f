using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The WGAN critic of InputIBA's second stage, one independent critic per explained input, all held in the same
/// tensors so that a batch of inputs takes one forward and one backward pass (grouped convolutions, batched matrix
/// products). On feature maps [K, h, w]: conv 3x3 (K -> W, padding 1), LeakyReLU(0.2), conv 4x4 stride 2 (W -> W,
/// padding 1), LeakyReLU(0.2), linear to one score. On per-position text features [T, H] (<c>sequence</c>): the same
/// in one dimension along T, conv 3 (H -> W, padding 1), LeakyReLU(0.2), conv 4 stride 2 (W -> W, padding 1),
/// LeakyReLU(0.2), linear to one score; written as unfolded windows and batched products, not conv1d (whose CPU input
/// gradient was unreliable here, see <see cref="Models.TextCnn"/>). The reference's text critic is an LSTM over the
/// positions; one LSTM per explained input cannot share a pass in TorchSharp, and a convolution sees the positions in
/// order too. On features of any other shape (flattened to D): linear D -> W, LeakyReLU(0.2), linear W -> 1. No batch normalisation: a critic must score samples independently. Weights start
/// uniform in [-clip, clip] (the range weight clipping keeps them in) from each input's own generator.
/// </summary>
internal sealed class FeatureCritic : IDisposable
{
    readonly long inputs;
    readonly long[] featureShape;
    readonly bool convolutional;
    readonly bool sequence;
    readonly List<Parameter> parameters = [];

    public FeatureCritic(long[] featureShape, int width, double clip, Generator[] generators, ScalarType dtype, Device device, bool sequence = false)
    {
        inputs = generators.Length;
        this.featureShape = featureShape;
        if (sequence && featureShape.Length != 2)
            throw new ArgumentException($"input_iba: a sequence critic reads per-position features [T, H], got [{string.Join(", ", featureShape)}]");
        this.sequence = sequence;
        convolutional = !sequence && featureShape.Length == 3;
        long w = width;
        var shapes = new List<long[]>();
        if (convolutional)
        {
            long k = featureShape[0], h = featureShape[1], wd = featureShape[2];
            long h2 = (h + 2 - 4) / 2 + 1, w2 = (wd + 2 - 4) / 2 + 1;
            if (h2 < 1 || w2 < 1) throw new ArgumentException($"input_iba: the critic's stride-2 convolution needs feature maps of at least 2x2, got [{string.Join(", ", featureShape)}]");
            shapes.Add([w, k, 3, 3]); shapes.Add([w]);
            shapes.Add([w, w, 4, 4]); shapes.Add([w]);
            shapes.Add([w * h2 * w2]); shapes.Add([1]);
        }
        else if (sequence)
        {
            long t = featureShape[0], h = featureShape[1];
            long t2 = (t + 2 - 4) / 2 + 1;
            if (t2 < 1) throw new ArgumentException($"input_iba: the critic's stride-2 convolution needs at least 2 positions, got [{string.Join(", ", featureShape)}]");
            shapes.Add([w, h, 3]); shapes.Add([w]);
            shapes.Add([w, w, 4]); shapes.Add([w]);
            shapes.Add([w * t2]); shapes.Add([1]);
        }
        else
        {
            long d = featureShape.Aggregate(1L, (a, b) => a * b);
            shapes.Add([w, d]); shapes.Add([w]);
            shapes.Add([w]); shapes.Add([1]);
        }
        foreach (var shape in shapes)
        {
            using var scope = NewDisposeScope();
            // One draw per input from its own generator: a critic does not depend on the other inputs of the batch.
            var perInput = generators.Select(g => rand(shape, dtype, device, generator: g)).ToList();
            var values = (stack(perInput, 0) * (2 * clip) - clip).detach();
            parameters.Add(new Parameter(values.MoveToOuterDisposeScope(), requires_grad: true));
        }
    }

    public IReadOnlyList<Parameter> Parameters => parameters;

    /// <summary>Scores [S, B] of features [S, B, ...featureShape]: input b's samples go through critic b.</summary>
    public Tensor Score(Tensor features)
    {
        using var scope = NewDisposeScope();
        long s = features.shape[0];
        Tensor score;
        if (convolutional)
        {
            long k = featureShape[0], h = featureShape[1], wd = featureShape[2];
            long w = parameters[1].shape[1];
            var x = features.reshape(s, inputs * k, h, wd);
            // Grouped convolutions: group b sees only input b's channels and uses only critic b's filters.
            var a = nn.functional.leaky_relu(nn.functional.conv2d(x, parameters[0].reshape(inputs * w, k, 3, 3), parameters[1].reshape(inputs * w),
                                                                  padding: [1, 1], groups: inputs), 0.2);
            a = nn.functional.leaky_relu(nn.functional.conv2d(a, parameters[2].reshape(inputs * w, w, 4, 4), parameters[3].reshape(inputs * w),
                                                              strides: [2, 2], padding: [1, 1], groups: inputs), 0.2);
            var flat = a.reshape(s, inputs, -1);                                            // [S, B, W h2 w2]
            score = einsum("sbd,bd->sb", flat, parameters[4]) + parameters[5].reshape(1, inputs);
        }
        else if (sequence)
        {
            // Windows along T (axis 2 of [S, B, T, H]): unfold gives [S, B, T', H, k]; critic b's filters are [W, H, k].
            var padded = nn.functional.pad(features, [0, 0, 1, 1]);
            var a = einsum("sbthk,bwhk->sbtw", padded.unfold(2, 3, 1), parameters[0]) + parameters[1].reshape(1, inputs, 1, -1);
            a = nn.functional.leaky_relu(a, 0.2);
            a = einsum("sbtvk,bwvk->sbtw", nn.functional.pad(a, [0, 0, 1, 1]).unfold(2, 4, 2), parameters[2]) + parameters[3].reshape(1, inputs, 1, -1);
            a = nn.functional.leaky_relu(a, 0.2);
            score = einsum("sbd,bd->sb", a.reshape(s, inputs, -1), parameters[4]) + parameters[5].reshape(1, inputs);
        }
        else
        {
            var flat = features.reshape(s, inputs, -1);                                     // [S, B, D]
            var a = nn.functional.leaky_relu(einsum("sbd,bwd->sbw", flat, parameters[0]) + parameters[1].unsqueeze(0), 0.2);
            score = einsum("sbw,bw->sb", a, parameters[2]) + parameters[3].reshape(1, inputs);
        }
        return score.MoveToOuterDisposeScope();
    }

    /// <summary>WGAN weight clipping (Arjovsky et al. 2017): every critic weight back into [-clip, clip].</summary>
    public void Clip(double clip)
    {
        using var noGrad = no_grad();
        foreach (var p in parameters) p.clamp_(-clip, clip);
    }

    public void Dispose()
    {
        foreach (var p in parameters) p.Dispose();
    }
}
