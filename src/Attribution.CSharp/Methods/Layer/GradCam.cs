using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Grad-CAM (Selvaraju et al. 2017, Eq. 1-2), as Captum's <c>LayerGradCam</c> followed by
/// <c>LayerAttribution.interpolate</c>: A = the activation [B, K, h, w] after <c>stage</c>; the weight of
/// channel k is the spatial mean of d f / d A_k; the map is ReLU(sum_k w_k A_k), upsampled bilinearly
/// (align_corners false) to the input's height and width and given to every input channel.
/// <para>Defaults: stage <c>conv2</c> (the last convolution of <see cref="FashionCnn"/>, after its ReLU), ReLU on
/// (the paper's; Captum's <c>relu_attributions</c> defaults to off). f is the toolkit's output function
/// (<c>options.Output</c>); the paper differentiates the class score before the softmax, i.e. <c>Logit</c>.
/// Captum's <c>interpolate</c> defaults to nearest; bilinear gives the smooth maps of the paper.</para>
/// Needs a model that implements <see cref="ILayeredModel"/>. One forward and one backward pass per chunk
/// of <see cref="ExplainOptions.BatchSize"/> inputs.
/// </summary>
public sealed class GradCam : IAttributionMethod
{
    public GradCam(string stage = "conv2", bool relu = true)
    {
        if (string.IsNullOrWhiteSpace(stage)) throw new ArgumentException("grad_cam: the stage name is empty", nameof(stage));
        Stage = stage; Relu = relu;
    }

    public string Stage { get; }
    public bool Relu { get; }

    public string Describe() => $"grad_cam: activation after '{Stage}', {(Relu ? "ReLU of the " : "")}gradient-weighted channel sum, bilinear upsampling";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        if (model is not ILayeredModel layered)
            throw new ArgumentException($"grad_cam needs a model that can be cut at a named stage (Attribution.Models.ILayeredModel); {model.GetType().Name} is not one");
        if (!layered.Stages.Contains(Stage))
            throw new ArgumentException($"grad_cam: unknown stage '{Stage}'; the model's stages: {string.Join(", ", layered.Stages)}");
        PerturbationEngine.CheckImages(inputs, "grad_cam");
        PerturbationEngine.CheckTargets(inputs, targets);
        options.Check();
        model.eval();
        using var scope = NewDisposeScope();
        long count = inputs.shape[0], channels = inputs.shape[1], height = inputs.shape[2], width = inputs.shape[3];
        var maps = new List<Tensor>();
        long chunk = options.PointsPerChunk(inputs);
        for (long start = 0; start < count; start += chunk)
        {
            long n = Math.Min(chunk, count - start);
            maps.Add(Chunk(layered, inputs.narrow(0, start, n), targets.narrow(0, start, n), options.Output, height, width));
        }
        var map = cat(maps, 0).expand(count, channels, height, width).to(inputs.dtype).contiguous();
        return new Explanation(map.MoveToOuterDisposeScope());
    }

    Tensor Chunk(ILayeredModel model, Tensor x, Tensor targets, OutputFunction output, long height, long width)
    {
        using var scope = NewDisposeScope();
        Tensor activation;
        using (no_grad()) activation = model.ForwardTo(Stage, x);
        if (activation.shape.Length != 4)
            throw new ArgumentException($"grad_cam: the activation after '{Stage}' must be a feature map [B, K, h, w], got [{string.Join(", ", activation.shape)}]");
        using var enableGrad = enable_grad();
        var a = activation.detach().requires_grad_(true);
        var logits = model.ForwardFrom(Stage, a);
        var picked = targets.unsqueeze(1);
        var f = output == OutputFunction.Logit
            ? logits.gather(1, picked)
            : nn.functional.softmax(logits, 1).gather(1, picked);
        var gradient = autograd.grad([f.sum()], [a])[0];
        var weights = gradient.mean([2L, 3L], keepdim: true);                      // alpha_k (Eq. 1)
        var cam = (weights * a.detach()).sum(1, keepdim: true);                     // sum_k alpha_k A_k (Eq. 2)
        if (Relu) cam = nn.functional.relu(cam);
        cam = nn.functional.interpolate(cam, [height, width], mode: InterpolationMode.Bilinear, align_corners: false);
        return cam.MoveToOuterDisposeScope();
    }
}
