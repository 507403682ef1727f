using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// A model exported from PyTorch as TorchScript (<c>torch.jit.trace</c> or <c>torch.jit.script</c>, then <c>save</c>),
/// loaded with <c>torch.jit.load</c> and seen as an <see cref="nn.Module{T, TResult}"/> from one input tensor to its
/// logits, so that every method that needs only forward passes and input gradients explains it. It has no named stages
/// and no swappable ReLUs: layer methods and rule-based methods refuse it.
/// </summary>
public sealed class TorchScriptModel : nn.Module<Tensor, Tensor>
{
    readonly jit.ScriptModule<Tensor, Tensor> script;

    TorchScriptModel(jit.ScriptModule<Tensor, Tensor> script, string path) : base(nameof(TorchScriptModel))
    {
        // Not registered as a submodule: TorchSharp's Dispose walks named_modules() while disposing them, and a script
        // module's listing needs its own (by then disposed) handle. Mode, parameters and device are passed on below.
        this.script = script;
        Path = path;
    }

    /// <summary>The file it was loaded from.</summary>
    public string Path { get; }

    /// <summary>Loads a TorchScript file on the CPU.</summary>
    /// <exception cref="InvalidDataException">The file is not TorchScript (a state dict, a pickle, something else); the
    /// message says how to make one.</exception>
    public static TorchScriptModel Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such TorchScript file", path);
        try
        {
            return new TorchScriptModel(jit.load<Tensor, Tensor>(path), path);
        }
        catch (Exception e) when (e is not FileNotFoundException)
        {
            throw new InvalidDataException(
                $"{path} is not a TorchScript model ({e.Message.Split('\n')[0].Trim()}). Save one from PyTorch with "
                + "torch.jit.trace(model.eval(), example_input).save(path) or torch.jit.script(model).save(path); "
                + "a state dict (torch.save(model.state_dict())) goes with a known architecture instead.", e);
        }
    }

    public override Tensor forward(Tensor input) => script.call(input);

    public override void train(bool train = true)
    {
        script.train(train);
        base.train(train);
    }

    public override IEnumerable<(string name, TorchSharp.Modules.Parameter parameter)> named_parameters(bool recurse = true) => script.named_parameters(recurse);

    public override IEnumerable<(string name, Tensor buffer)> named_buffers(bool recurse = true, bool include_nonpersistent = true) =>
        script.named_buffers(recurse, include_nonpersistent);

    protected override nn.Module _to(Device device, ScalarType dtype, bool non_blocking)
    {
        script.to(device, dtype, non_blocking);
        return this;
    }

    protected override nn.Module _to(DeviceType deviceType, int deviceIndex, bool non_blocking)
    {
        script.to(deviceType, deviceIndex, non_blocking);
        return this;
    }

    protected override nn.Module _to(ScalarType dtype, bool non_blocking)
    {
        script.to(dtype, non_blocking);
        return this;
    }

    // TorchSharp finds the script as a field and lists it as a child; its listing would need the script's handle while
    // Dispose walks it. The script is this model's implementation, not a submodule to walk: none are listed.
    public override IEnumerable<(string name, nn.Module module)> named_modules() => [];

    public override IEnumerable<(string name, nn.Module module)> named_children() => [];

    protected override void Dispose(bool disposing)
    {
        if (disposing) script.Dispose();
        base.Dispose(disposing);
    }
}
