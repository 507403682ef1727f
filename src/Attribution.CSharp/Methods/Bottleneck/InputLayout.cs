using Attribution.Models;
using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>How InputIBA reads the axes of the inputs it explains (mask smoothing, the map, the WGAN critic).</summary>
public enum InputLayout
{
    /// <summary>Images [B, C, H, W]: the input mask is blurred over H and W; the capacity map is summed over channels.</summary>
    Image,

    /// <summary>
    /// Token sequences: a <see cref="TextModel"/>'s embeddings [B, T, E], or their [B, T, 1, E] view through a
    /// <see cref="ReshapedModel"/>; axis 1 is the token position. The mask is not smoothed (the reference's text setting,
    /// sigma 0: neighbouring words are not neighbouring pixels); the map stays per coordinate, so a word's score is the
    /// sum over its embedding coordinates (<see cref="TokenScores"/>); the critic reads per-position features [T, H]
    /// along T.
    /// </summary>
    TokenSequence,

    /// <summary>Anything else: no smoothing, the map per element, the critic a small MLP on non-image features.</summary>
    Elements,
}

/// <summary>Which <see cref="InputLayout"/> a model and its inputs have.</summary>
public static class InputLayouts
{
    /// <summary>
    /// <see cref="InputLayout.TokenSequence"/> for a <see cref="TextModel"/> or a <see cref="ReshapedModel"/> over one
    /// (decided by the model: a [B, T, 1, E] text view and a [B, C, H, W] image have the same rank);
    /// <see cref="InputLayout.Image"/> for other inputs of rank 4; <see cref="InputLayout.Elements"/> otherwise.
    /// </summary>
    public static InputLayout Of(object model, Tensor inputs)
    {
        if (model is TextModel || model is ReshapedModel { Inner: TextModel }) return InputLayout.TokenSequence;
        return inputs.dim() == 4 ? InputLayout.Image : InputLayout.Elements;
    }
}
