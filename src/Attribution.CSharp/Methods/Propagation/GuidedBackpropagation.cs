using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Guided Backpropagation (Springenberg et al. 2015) and Deconvnet (Zeiler and Fergus 2014), as in Captum's
/// GuidedBackprop and Deconvolution: the gradient of f with respect to the input, with every ReLU's
/// backward rule replaced (<see cref="ReluRule"/>); signed. Needs a model that can swap its ReLUs
/// (<see cref="IRectifiedModel"/>); goes through the shared gradient engine.
/// </summary>
public sealed class GuidedBackpropagation : IAttributionMethod
{
    readonly SampledGradients gradient = Presets.Saliency(absolute: false);

    public GuidedBackpropagation(ReluRule rule = ReluRule.Guided) { Rule = rule; }

    public ReluRule Rule { get; }

    public string Describe() => Rule == ReluRule.Guided ? "guided_backprop: input gradient through guided ReLUs" : "deconvnet: input gradient through deconvnet ReLUs";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        if (model is not IRectifiedModel rectified)
            throw new ArgumentException($"{Describe()} needs a model whose ReLUs can be replaced (IRectifiedModel); {model.GetType().Name} is not one");
        using var swap = rectified.UseRectifier(ModifiedRelu.Rectifier(Rule));
        return gradient.Explain(model, inputs, targets, options);
    }
}
