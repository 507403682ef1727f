using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Buffers.Binary;
using System.Security.Cryptography;
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
/// <para>This writer seals every file: <c>__metadata__</c> records <c>content_sha256</c>, the SHA-256 (lowercase hex) of
/// the data section, and <c>header_sha256</c>, that of the header (see <see cref="Verify"/>). Other readers see two more
/// metadata strings; <see cref="Load"/> accepts files without them (weights saved by PyTorch's <c>safetensors</c>),
/// <see cref="LoadVerified"/> does not.</para>
/// </remarks>
public static partial class Safetensors
{
    private const string MetadataKey = "__metadata__";

    /// <summary>
    /// Writes <paramref name="tensors"/> atomically, sealed with the checksums of its data and header; tensors are
    /// copied to CPU and made contiguous.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor is named <c>__metadata__</c>, or <paramref name="metadata"/> uses the
    /// reserved key <c>content_sha256</c> or <c>header_sha256</c>.</exception>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        SafetensorsHeader.RequireLittleEndian();
        RequireWritable(tensors.Keys, metadata, "Safetensors.Save");
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();
        using var scope = NewDisposeScope();
        var blobs = new byte[names.Length][];
        for (int i = 0; i < names.Length; i++)
        {
            var t = tensors[names[i]] ?? throw new ArgumentException($"Safetensors.Save: tensor '{names[i]}' is null.", nameof(tensors));
            SafetensorsDType.Of(t.dtype, names[i]);
            blobs[i] = t.detach().cpu().contiguous().bytes.ToArray();
        }
        var layout = new (string Name, string DType, long[] Shape, long Length)[names.Length];
        for (int i = 0; i < names.Length; i++)
            layout[i] = (names[i], SafetensorsDType.Of(tensors[names[i]].dtype, names[i]).Name, tensors[names[i]].shape, blobs[i].LongLength);
        var headerBytes = SealedHeader(layout, metadata, Sha256Hex(blobs));
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)headerBytes.Length);
            stream.Write(length);
            stream.Write(headerBytes);
            foreach (var blob in blobs) stream.Write(blob);
        });
    }

    /// <summary>
    /// Reads every tensor of the file as a CPU tensor; the caller owns (and disposes) them. Checksums are not
    /// required or checked (see <see cref="LoadVerified"/>), so files saved by other tools load too.
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is truncated or malformed; the message names the file and the rule broken.</exception>
    public static Dictionary<string, Tensor> Load(string path)
    {
        using var file = OpenChecked(path);
        return ReadTensors(file, SafetensorsHeader.Read(file, path), path, hash: null);
    }

    // The header check guarantees that the entries tile the data section in offset order, so reading them one after
    // the other reads every data byte exactly once: feeding them to the hash as they pass gives the data's checksum.
    private static Dictionary<string, Tensor> ReadTensors(FileStream file, SafetensorsHeader header, string path, IncrementalHash? hash)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            file.Position = header.DataStart;
            foreach (var entry in header.InFileOrder)
            {
                var tensor = torch.empty(entry.Shape, entry.Type);
                result.Add(entry.Name, tensor);
                if (entry.ByteLength == 0) continue;
                var buffer = new byte[entry.ByteLength];
                try { file.ReadExactly(buffer); }
                catch (EndOfStreamException)
                {
                    // The size check passed when the header was read, so the file shrank while it was being read.
                    throw SafetensorsHeader.Malformed(path, $"the data section ends inside tensor '{entry.Name}' (bytes {entry.Begin} to {entry.End}); the file was truncated while it was being read");
                }
                hash?.AppendData(buffer);
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

    /// <summary>The reserved names and metadata keys a writer refuses (see <see cref="Save"/>).</summary>
    internal static void RequireWritable(IEnumerable<string> names, IReadOnlyDictionary<string, string>? metadata, string writer)
    {
        if (names.Contains(MetadataKey))
            throw new ArgumentException($"{writer}: '{MetadataKey}' is reserved for metadata; rename that tensor.", nameof(names));
        if (metadata?.Keys.FirstOrDefault(SafetensorsSeal.IsReserved) is { } reserved)
            throw new ArgumentException($"{writer}: the metadata key '{reserved}' is reserved: the writer records the file's checksum under it. Rename that entry.", nameof(metadata));
    }

    /// <summary>
    /// The header of a file whose tensors lie in the data section in <paramref name="layout"/>'s order, sealed with the
    /// data's checksum <paramref name="contentSha256"/> and its own. Its length does not depend on the checksum's value
    /// (64 hex digits), so a writer may lay the data out before it knows the checksum.
    /// </summary>
    internal static byte[] SealedHeader(IReadOnlyList<(string Name, string DType, long[] Shape, long Length)> layout,
                                        IReadOnlyDictionary<string, string>? metadata, string contentSha256)
    {
        var sealedMetadata = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [SafetensorsSeal.ContentKey] = contentSha256,
            [SafetensorsSeal.HeaderKey] = SafetensorsSeal.Placeholder,
        };
        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            json.WriteStartObject(MetadataKey);
            foreach (var (k, v) in sealedMetadata.OrderBy(p => p.Key, StringComparer.Ordinal)) json.WriteString(k, v);
            json.WriteEndObject();
            long offset = 0;
            foreach (var (name, dtype, shape, length) in layout)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var d in shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += length;
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < padding; i++) header.WriteByte((byte)' ');
        var headerBytes = header.ToArray();
        SafetensorsSeal.SealHeader(headerBytes);
        return headerBytes;
    }

    private static string Sha256Hex(IEnumerable<byte[]> blobs)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var blob in blobs) hash.AppendData(blob);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Each tensor's shape, read from the header alone (a data file's inputs, say, without loading them).</summary>
    public static IReadOnlyDictionary<string, long[]> ReadShapes(string path)
    {
        using var file = OpenChecked(path);
        return SafetensorsHeader.Read(file, path).Entries.ToDictionary(e => e.Name, e => e.Shape, StringComparer.Ordinal);
    }

    /// <summary>
    /// The <c>__metadata__</c> strings (empty if the file has none), read from the header alone; for a file written by
    /// <see cref="Save"/> they include the checksums <c>content_sha256</c> and <c>header_sha256</c>.
    /// </summary>
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
    /// entry must be present with the same shape and the file may hold nothing else (BatchNorm's
    /// num_batches_tracked counters excepted, see <see cref="StateDict.LoadInto"/>); otherwise nothing is
    /// copied and the exception lists every missing, unexpected and mismatched name. Floating-point tensors
    /// must hold finite values only (a diverged training run saves NaN without complaint, and every attribution
    /// from such weights would be NaN). Values are converted to the module's dtype and device, as PyTorch's
    /// <c>load_state_dict</c> does. Files without checksums load (weights saved by PyTorch).
    /// </summary>
    /// <exception cref="InvalidDataException">The file is malformed, does not fit the module, or holds NaN or infinite
    /// values (the message lists each such tensor with its counts); the module is then unchanged.</exception>
    public static void LoadModule(nn.Module module, string path)
    {
        ArgumentNullException.ThrowIfNull(module);
        var loaded = Load(path);
        try { StateDict.LoadInto(module, loaded, path); }
        finally
        {
            foreach (var t in loaded.Values) t.Dispose();
        }
    }

    // "name (3 NaN)", "name (1 Inf)", "name (2 NaN, 1 Inf)" for each floating-point tensor with non-finite values, by name.
    internal static List<string> NonFiniteCounts(IReadOnlyDictionary<string, Tensor> tensors)
    {
        using var scope = NewDisposeScope();
        var result = new List<string>();
        foreach (var (name, t) in tensors.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!t.is_floating_point()) continue;
            long nan = t.isnan().sum().item<long>(), inf = t.isinf().sum().item<long>();
            var counts = new List<string>();
            if (nan > 0) counts.Add($"{nan} NaN");
            if (inf > 0) counts.Add($"{inf} Inf");
            if (counts.Count > 0) result.Add($"{name} ({string.Join(", ", counts)})");
        }
        return result;
    }

    private static FileStream OpenChecked(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Safetensors: no file at '{path}'. Check the path, or write the weights first with Safetensors.Save / SaveModule.", path);
        return File.OpenRead(path);
    }
}
