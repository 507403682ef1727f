using static TorchSharp.torch;

namespace Attribution.Sampling;

/// <summary>The input itself, once: turns the sampled-gradient machinery into plain gradients (Saliency, Gradient x Input).</summary>
public sealed class InputPoint : ISampler
{
    public string Describe() => "input";

    public SampleSet Draw(Tensor input, long target, int count, Generator generator) =>
        new(input.expand(input.shape.Skip(1).Prepend((long)count).ToArray()).clone(), Weights.Uniform(count, input.device));
}
