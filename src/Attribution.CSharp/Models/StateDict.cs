using System.Collections;
using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// A PyTorch state dict (parameter and buffer names to tensors) read from the file a user has: <c>.pth</c>/<c>.pt</c>
/// as <c>torch.save(model.state_dict(), path)</c> writes it (read through TorchSharp.PyBridge's unpickler), or
/// <c>.safetensors</c>. Loading checks every name and shape against the model before one value is copied, so a
/// mismatch leaves the model as it was and the error lists what differs.
/// </summary>
public static class StateDict
{
    /// <summary>The file's tensors by name (CPU). The caller disposes them.</summary>
    /// <exception cref="InvalidDataException">The file is not a state dict; the message says how to write one.</exception>
    public static Dictionary<string, Tensor> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such weights file", path);
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            try { return Safetensors.Load(path); }
            catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        }
        Hashtable table;
        try
        {
            using var stream = File.OpenRead(path);
            table = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(stream, leaveOpen: false, skipTensorRead: false);
        }
        catch (Exception e)
        {
            throw new InvalidDataException(
                $"{path} is not a PyTorch state dict ({e.Message.Split('\n')[0].Trim()}). Write one with "
                + "torch.save(model.state_dict(), path); a whole pickled model or a TorchScript file is not one "
                + "(a TorchScript file goes in model.source: torchscript).", e);
        }
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in table)
        {
            if (entry.Key is not string name || entry.Value is not Tensor tensor)
            {
                foreach (var t in tensors.Values) t.Dispose();
                throw new InvalidDataException($"{path}: entry '{entry.Key}' is not a tensor; a state dict maps names to tensors "
                                               + "(a checkpoint that wraps it, e.g. {{'model': state_dict, 'epoch': …}}, must be unwrapped first)");
            }
            tensors[name] = tensor;
        }
        return tensors;
    }

    /// <summary>
    /// The file's tensor shapes by name, without reading the tensors where the format allows: a safetensors header, or
    /// a .pth unpickled with its tensors left unread (what the model must look like before its weights are loaded).
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a state dict (as for <see cref="Read"/>).</exception>
    public static IReadOnlyDictionary<string, long[]> ReadShapes(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such weights file", path);
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            try { return Safetensors.ReadShapes(path); }
            catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        }
        try
        {
            using var stream = File.OpenRead(path);
            var table = TorchSharp.PyBridge.PyTorchUnpickler.UnpickleStateDict(stream, leaveOpen: true, skipTensorRead: true);
            var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
            foreach (DictionaryEntry entry in table)
            {
                // PyBridge's unread tensor (an internal record) states its shape; a layout it does not have is read in full below.
                if (entry.Key is string name && entry.Value?.GetType().GetProperty("Shape")?.GetValue(entry.Value) is long[] shape)
                    shapes[name] = shape;
                else
                    return ShapesOfRead(path);
            }
            return shapes;
        }
        catch (Exception e) when (e is not InvalidDataException)
        {
            return ShapesOfRead(path);
        }
    }

    static IReadOnlyDictionary<string, long[]> ShapesOfRead(string path)
    {
        var tensors = Read(path);
        try { return tensors.ToDictionary(kv => kv.Key, kv => kv.Value.shape, StringComparer.Ordinal); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>
    /// Copies <paramref name="tensors"/> into <paramref name="model"/>'s parameters and buffers, by PyTorch's names.
    /// Names saved from a <c>DataParallel</c> model (every one prefixed <c>module.</c>) are matched without the prefix.
    /// BatchNorm's <c>num_batches_tracked</c> counters may be absent or extra on either side (evaluation never reads them).
    /// </summary>
    /// <exception cref="InvalidDataException">Names or shapes differ; the message lists them, naming <paramref name="source"/>.</exception>
    public static void LoadInto(nn.Module model, IReadOnlyDictionary<string, Tensor> tensors, string source)
    {
        var targets = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in model.named_parameters()) targets[name] = p;
        foreach (var (name, b) in model.named_buffers(include_nonpersistent: false)) targets[name] = b;
        var given = StripDataParallelPrefix(tensors, targets);

        static bool Optional(string name) => name.EndsWith("num_batches_tracked", StringComparison.Ordinal);
        var missing = targets.Keys.Where(k => !given.ContainsKey(k) && !Optional(k)).Order(StringComparer.Ordinal).ToList();
        var unexpected = given.Keys.Where(k => !targets.ContainsKey(k) && !Optional(k)).Order(StringComparer.Ordinal).ToList();
        var misshapen = targets.Where(t => given.TryGetValue(t.Key, out var g) && !g.shape.SequenceEqual(t.Value.shape))
                               .OrderBy(t => t.Key, StringComparer.Ordinal)
                               .Select(t => $"{t.Key} (module [{Shape(t.Value)}], file [{Shape(given[t.Key])}])").ToList();
        if (missing.Count + unexpected.Count + misshapen.Count > 0)
            throw new InvalidDataException(Mismatch(source, model, missing, unexpected, misshapen));
        var nonFinite = Safetensors.NonFiniteCounts(given.Where(kv => targets.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value));
        if (nonFinite.Count > 0)
            throw new InvalidDataException($"{source}: the weights hold non-finite values: {string.Join(", ", nonFinite)}. "
                                           + "The run that saved them probably diverged; nothing was loaded into the module.");

        using var noGrad = no_grad();
        foreach (var (name, target) in targets)
            if (given.TryGetValue(name, out var value))
                target.copy_(value.to(target.dtype, target.device));
    }

    /// <summary>Reads <paramref name="path"/> and loads it into <paramref name="model"/> (see <see cref="LoadInto"/>).</summary>
    public static void Load(nn.Module model, string path)
    {
        var tensors = Read(path);
        try { LoadInto(model, tensors, path); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    static IReadOnlyDictionary<string, Tensor> StripDataParallelPrefix(IReadOnlyDictionary<string, Tensor> given, Dictionary<string, Tensor> targets)
    {
        const string prefix = "module.";
        bool wrapped = given.Count > 0 && given.Keys.All(k => k.StartsWith(prefix, StringComparison.Ordinal))
                       && !targets.Keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));
        return wrapped ? given.ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal) : given;
    }

    static string Shape(Tensor t) => string.Join(", ", t.shape);

    static string Mismatch(string source, nn.Module model, List<string> missing, List<string> unexpected, List<string> misshapen)
    {
        static string Some(List<string> names) =>
            string.Join(", ", names.Take(12)) + (names.Count > 12 ? $", … ({names.Count - 12} more)" : "");
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"missing from the file: {Some(missing)}");
        if (unexpected.Count > 0) parts.Add($"unexpected in the file: {Some(unexpected)}");
        if (misshapen.Count > 0) parts.Add($"shape mismatch: {Some(misshapen)}");
        return $"{source}: the weights do not fit the module {model.GetType().Name} ({string.Join("; ", parts)}). "
               + "Check that the file was saved from the same architecture and configuration (e.g. the number of classes).";
    }
}
