using static TorchSharp.torch;

namespace Attribution.Methods;

/// <summary>
/// Switches off requires_grad of a model's trainable parameters for the lifetime of the value and restores it on
/// Dispose: the optimisation-based methods differentiate their masks through the model, never its weights.
/// </summary>
internal sealed class FrozenParameters : IDisposable
{
    readonly List<TorchSharp.Modules.Parameter> parameters;

    FrozenParameters(List<TorchSharp.Modules.Parameter> parameters) => this.parameters = parameters;

    public static FrozenParameters Of(nn.Module model)
    {
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        foreach (var p in trainable) p.requires_grad = false;
        return new FrozenParameters(trainable);
    }

    public void Dispose()
    {
        foreach (var p in parameters) p.requires_grad = true;
    }
}
