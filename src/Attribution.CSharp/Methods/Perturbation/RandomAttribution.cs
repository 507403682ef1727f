using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// The chance baseline of the evaluations (ROAR's and the InputIBA paper's "random attribution"): every element of the
/// map drawn from U(0, 1), independently, from the input's own generator (seed, input key), so that a map does not
/// depend on its batch and a metric's score for it is what an uninformative ranking gets. On text the token score sums
/// E uniforms a word, which ranks the words at random as well.
/// </summary>
public sealed class RandomAttribution : IAttributionMethod
{
    public string Describe() => "random: U(0, 1) independently for every input element (a chance baseline)";

    public Explanation Explain(nn.Module<Tensor, Tensor> model, Tensor inputs, Tensor targets, ExplainOptions options)
    {
        PerturbationEngine.CheckTargets(inputs, targets);
        options.Check();
        using var scope = NewDisposeScope();
        var keys = options.Keys(inputs.shape[0]);
        var shape = inputs.shape.Skip(1).ToArray();
        var maps = stack(keys.Select(k =>
        {
            using var generator = options.GeneratorFor(k, inputs.device);
            return rand(shape, inputs.dtype, inputs.device, generator: generator);
        }).ToList(), 0);
        return new Explanation(maps.MoveToOuterDisposeScope());
    }
}
