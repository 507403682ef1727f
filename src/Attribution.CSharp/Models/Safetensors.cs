using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Attribution.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// Reads and writes the safetensors format (Hugging Face), so that weights move between this toolkit
/// and PyTorch's <c>safetensors</c> package without pickle.
/// </summary>
/// <remarks>
/// Layout of a file:
/// <list type="number">
/// <item>8 bytes: N, the header length, unsigned 64-bit little-endian.</item>
/// <item>N bytes: a UTF-8 JSON object, padded with spaces so that N is a multiple of 8. Each key is a
/// tensor name mapped to <c>{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}</c>;
/// the optional key <c>"__metadata__"</c> maps to an object of string values.</item>
/// <item>The data section: every tensor's elements, row-major, little-endian, at
/// [begin, end) relative to the start of this section. The ranges tile the section without gaps or overlap.</item>
/// </list>
/// dtypes: F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL (one byte, 0 or 1).
/// This writer sorts tensors by name (ordinal) and lays the data out in that order; the reader accepts any order.
/// Each tensor is held in a managed byte array while it is read or written, so a single tensor is limited to 2 GiB.
/// </remarks>
public static class Safetensors
{
    private const string MetadataKey = "__metadata__";

    /// <summary>Writes <paramref name="tensors"/> atomically; tensors are copied to CPU and made contiguous.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        SafetensorsHeader.RequireLittleEndian();
        if (tensors.ContainsKey(MetadataKey))
            throw new ArgumentException($"Safetensors.Save: '{MetadataKey}' is reserved for metadata; rename that tensor.", nameof(tensors));
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();
        using var scope = NewDisposeScope();
        var blobs = new byte[names.Length][];
        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            for (int i = 0; i < names.Length; i++)
            {
                var t = tensors[names[i]] ?? throw new ArgumentException($"Safetensors.Save: tensor '{names[i]}' is null.", nameof(tensors));
                var (dtype, _) = SafetensorsDType.Of(t.dtype, names[i]);
                var cpu = t.detach().cpu().contiguous();
                blobs[i] = cpu.bytes.ToArray();
                json.WriteStartObject(names[i]);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var d in cpu.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + blobs[i].LongLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += blobs[i].LongLength;
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < padding; i++) header.WriteByte((byte)' ');
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            header.Position = 0;
            header.CopyTo(stream);
            foreach (var blob in blobs) stream.Write(blob);
        });
    }

    /// <summary>Reads every tensor of the file as a CPU tensor; the caller owns (and disposes) them.</summary>
    /// <exception cref="InvalidDataException">The header is malformed; the message names the file and the rule broken.</exception>
    public static Dictionary<string, Tensor> Load(string path)
    {
        using var file = OpenChecked(path);
        var header = SafetensorsHeader.Read(file, path);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var entry in header.Entries.OrderBy(e => e.Begin))
            {
                var tensor = torch.empty(entry.Shape, entry.Type);
                result.Add(entry.Name, tensor);
                if (entry.ByteLength == 0) continue;
                var buffer = new byte[entry.ByteLength];
                file.Position = header.DataStart + entry.Begin;
                file.ReadExactly(buffer);
                tensor.bytes = buffer;
            }
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>The <c>__metadata__</c> strings (empty if the file has none), read from the header alone.</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using var file = OpenChecked(path);
        return SafetensorsHeader.Read(file, path).Metadata;
    }

    /// <summary>Saves <c>module.state_dict()</c> (parameters and buffers) atomically.</summary>
    public static void SaveModule(nn.Module module, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        Save(path, module.state_dict(), metadata);
    }

    /// <summary>
    /// Copies the file's tensors into the module's parameters and buffers, strictly: every state_dict
    /// entry must be present with the same shape and the file may hold nothing else; otherwise nothing is
    /// copied and the exception lists every missing, unexpected and mismatched name. Values are converted
    /// to the module's dtype and device, as PyTorch's <c>load_state_dict</c> does.
    /// </summary>
    public static void LoadModule(nn.Module module, string path)
    {
        ArgumentNullException.ThrowIfNull(module);
        var state = module.state_dict();
        var loaded = Load(path);
        try
        {
            var missing = state.Keys.Where(k => !loaded.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
            var unexpected = loaded.Keys.Where(k => !state.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
            var mismatched = state.Keys.Where(k => loaded.ContainsKey(k) && !state[k].shape.SequenceEqual(loaded[k].shape))
                .OrderBy(k => k, StringComparer.Ordinal)
                .Select(k => $"{k} (module [{string.Join(", ", state[k].shape)}], file [{string.Join(", ", loaded[k].shape)}])")
                .ToList();
            if (missing.Count + unexpected.Count + mismatched.Count > 0)
            {
                var parts = new List<string>();
                if (missing.Count > 0) parts.Add($"missing from the file: {string.Join(", ", missing)}");
                if (unexpected.Count > 0) parts.Add($"unexpected in the file: {string.Join(", ", unexpected)}");
                if (mismatched.Count > 0) parts.Add($"shape mismatch: {string.Join(", ", mismatched)}");
                throw new InvalidDataException($"{path}: the weights do not fit the module ({string.Join("; ", parts)}). "
                    + "Check that the file was saved from the same architecture and configuration.");
            }
            using var noGrad = torch.no_grad();
            foreach (var (name, target) in state) target.copy_(loaded[name]);
        }
        finally
        {
            foreach (var t in loaded.Values) t.Dispose();
        }
    }

    private static FileStream OpenChecked(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Safetensors: no file at '{path}'. Check the path, or write the weights first with Safetensors.Save / SaveModule.", path);
        return File.OpenRead(path);
    }
}
