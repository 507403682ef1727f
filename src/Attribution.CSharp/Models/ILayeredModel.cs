using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// A model that can be cut at a named stage: layer-based methods (Grad-CAM, IBA) read and replace the
/// activation after a stage, and the parameter-randomisation sanity check re-initialises layers from the
/// output backwards. Stage names are in forward order; the last stage's output is the logits.
/// </summary>
public interface ILayeredModel
{
    /// <summary>Stages in forward order (e.g. conv1, pool1, conv2, pool2, fc1, fc2, fc3).</summary>
    IReadOnlyList<string> Stages { get; }

    /// <summary>Stages that own parameters, in forward order.</summary>
    IReadOnlyList<string> ParameterStages { get; }

    /// <summary>The activation after <paramref name="stage"/> for <paramref name="input"/>.</summary>
    Tensor ForwardTo(string stage, Tensor input);

    /// <summary>The logits, continuing from the activation after <paramref name="stage"/>.</summary>
    Tensor ForwardFrom(string stage, Tensor activation);

    /// <summary>
    /// Applies <paramref name="stage"/> alone to the activation before it (the input, for the first stage), so that
    /// layer-wise inverses (MIP-IN) can take each stage's Jacobian. Models that cannot be cut stage by stage keep
    /// this default, which says so.
    /// </summary>
    Tensor ForwardStage(string stage, Tensor activation) =>
        throw new NotSupportedException($"{GetType().Name} cannot apply stage '{stage}' alone (ILayeredModel.ForwardStage)");

    /// <summary>Re-draws the parameters of <paramref name="stage"/> from its initialisation distribution, with <paramref name="generator"/>.</summary>
    void Reinitialise(string stage, Generator generator);
}
