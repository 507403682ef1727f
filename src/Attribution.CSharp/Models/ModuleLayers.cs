using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// Any model's sub-modules as the named stages of layer methods (Grad-CAM, IBA, InputIBA), by their module paths
/// (<c>layer4</c>, <c>features.28</c>, as PyTorch's <c>named_modules</c> spells them), through forward hooks:
/// <see cref="ForwardTo"/> runs the model and keeps the stage's output; <see cref="ForwardFrom"/> runs it again with
/// that output replaced. The second needs no input when every path from the input to the output passes through the
/// stage (then the rest of the network sees only the activation); the first use of a stage checks exactly that, and a
/// stage that a skip connection bypasses is refused, so no map is computed from a half-replaced network.
/// <para>The price of hooks: <see cref="ForwardFrom"/> also runs the layers before the stage (on zeros), where a
/// model cut by hand would start at the stage.</para>
/// </summary>
public sealed class ModuleLayers : nn.Module<Tensor, Tensor>, ILayeredModel
{
    readonly nn.Module<Tensor, Tensor> network;
    readonly Dictionary<string, nn.Module<Tensor, Tensor>> stageModules = new(StringComparer.Ordinal);
    readonly long[] inputShape;
    readonly HashSet<string> checkedCuts = new(StringComparer.Ordinal);

    /// <param name="network">What runs: the model, possibly wrapped (e.g. in <see cref="Normalised"/>).</param>
    /// <param name="named">Whose <c>named_modules</c> name the stages (the user's model inside the wrapper).</param>
    /// <param name="inputShape">One input's shape without the batch axis, e.g. [3, 224, 224].</param>
    public ModuleLayers(nn.Module<Tensor, Tensor> network, nn.Module named, long[] inputShape) : base(nameof(ModuleLayers))
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(named);
        this.network = network;
        this.inputShape = inputShape.ToArray();
        foreach (var (path, module) in named.named_modules())
            if (path.Length > 0 && module is nn.Module<Tensor, Tensor> stage)
                stageModules[path] = stage;
        register_module("network", network);
    }

    /// <summary>Every sub-module from one tensor to one tensor, by path, in registration order.</summary>
    public IReadOnlyList<string> Stages => stageModules.Keys.ToArray();

    /// <summary>None: re-initialising arbitrary modules is not offered (the cascading randomisation check refuses).</summary>
    public IReadOnlyList<string> ParameterStages => Array.Empty<string>();

    public override Tensor forward(Tensor input) => network.call(input);

    public Tensor ForwardTo(string stage, Tensor input)
    {
        var module = Find(stage);
        Tensor? kept = null;
        int calls = 0;
        var hook = module.register_forward_hook((_, _, output) =>
        {
            calls++;
            // A clone, because the model may change the output in place afterwards (ResNet's x.add_(identity));
            // out of the model's dispose scopes, which end before the call returns.
            if (calls == 1) kept = output.clone().DetachFromDisposeScope();
            return null!;
        });
        try
        {
            using (var scope = NewDisposeScope()) network.call(input);
        }
        finally { hook.remove(); }
        if (kept is null) throw new ArgumentException($"the model's forward pass does not run '{stage}' (its modules are called by forward, not call, or not at all)");
        using (kept)
        {
            if (calls > 1) throw new ArgumentException($"'{stage}' runs {calls} times in one forward pass; a layer method needs a module that runs once");
            return kept.alias();                                  // in the caller's dispose scope, with its autograd history
        }
    }

    public Tensor ForwardFrom(string stage, Tensor activation)
    {
        Find(stage);
        if (checkedCuts.Add(stage))
        {
            try { CheckCut(stage, activation); }
            catch { checkedCuts.Remove(stage); throw; }
        }
        return Replaced(stage, activation, Zeros(activation));
    }

    /// <summary>
    /// Checks, on a random input, that <paramref name="stage"/> exists, runs once, and is passed by every path to the
    /// output. Whether it is is a property of the architecture, not of its weights: a spec is checked before any work.
    /// </summary>
    /// <exception cref="ArgumentException">It is not a usable stage; the message says why.</exception>
    public void CheckStage(string stage)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = network.parameters().FirstOrDefault()?.device ?? CPU;
        using var g = new Generator(54321, device);
        var activation = ForwardTo(stage, rand(new[] { 1L }.Concat(inputShape).ToArray(), generator: g, device: device));
        CheckCut(stage, activation);
        checkedCuts.Add(stage);
    }

    public void Reinitialise(string stage, Generator generator) =>
        throw new NotSupportedException("the modules of a model named by path are not re-initialised (parameter randomisation needs a model cut into stages by hand)");

    Tensor Zeros(Tensor activation) =>
        zeros(new[] { activation.shape[0] }.Concat(inputShape).ToArray(), dtype: activation.dtype, device: activation.device);

    Tensor Replaced(string stage, Tensor activation, Tensor input)
    {
        // A clone for the same reason as above: the model may write into the stage's output in place.
        var hook = stageModules[stage].register_forward_hook((_, _, _) => activation.clone());
        try { return network.call(input); }
        finally { hook.remove(); }
    }

    /// <summary>With the stage's output held fixed, two different inputs must give the same logits.</summary>
    void CheckCut(string stage, Tensor activation)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var a = activation.detach().narrow(0, 0, 1);
        var shape = new[] { 1L }.Concat(inputShape).ToArray();
        using var g = new Generator(12345, activation.device);
        var first = Replaced(stage, a, rand(shape, dtype: a.dtype, device: a.device, generator: g));
        var second = Replaced(stage, a, rand(shape, dtype: a.dtype, device: a.device, generator: g) * 2 - 1);
        double scale = Math.Max(first.abs().max().item<float>(), 1e-12f);
        double gap = (first - second).abs().max().item<float>();
        if (gap > 1e-4 * scale)
            throw new ArgumentException(
                $"stage '{stage}': the model's output still depends on its input when this module's output is held fixed "
                + "(a skip connection or a second branch bypasses it), so the rest of the network cannot be run from it alone; "
                + $"choose a module that every path passes through (for a ResNet a whole stage such as 'layer4', not a module inside a block)");
    }

    nn.Module<Tensor, Tensor> Find(string stage)
    {
        if (stageModules.TryGetValue(stage, out var module)) return module;
        var close = stageModules.Keys.Where(k => k.Count(c => c == '.') <= 1).Take(40);
        throw new ArgumentException($"the model has no module '{stage}'; modules (by path): {string.Join(", ", close)}{(stageModules.Count > 40 ? ", …" : "")}");
    }
}
