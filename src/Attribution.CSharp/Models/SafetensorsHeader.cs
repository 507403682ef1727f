using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// A parsed and validated safetensors header (see <see cref="Safetensors"/> for the format); <see cref="Json"/> holds
/// the header's bytes as read (JSON and padding), which the header checksum covers.
/// </summary>
internal sealed record SafetensorsHeader(IReadOnlyList<SafetensorsHeader.Entry> Entries, IReadOnlyDictionary<string, string> Metadata,
                                         long DataStart, byte[] Json)
{
    internal sealed record Entry(string Name, ScalarType Type, long[] Shape, long Begin, long End)
    {
        public long ByteLength => End - Begin;
    }

    /// <summary>The length of the data section: every byte after the header.</summary>
    public long DataLength => Entries.Count == 0 ? 0 : Entries.Max(e => e.End);

    /// <summary>The entries in the order their bytes lie in the data section (zero-length entries first at a shared offset).</summary>
    public IEnumerable<Entry> InFileOrder => Entries.OrderBy(e => e.Begin).ThenBy(e => e.End);

    /// <summary>Reads the header from the start of <paramref name="file"/> and checks every rule of the format against the file's size.</summary>
    /// <exception cref="InvalidDataException">A rule is broken; the message names the file and the rule (see <see cref="Malformed"/>).</exception>
    public static SafetensorsHeader Read(FileStream file, string path)
    {
        InvalidDataException Bad(string what) => Malformed(path, what);

        RequireLittleEndian();
        long fileLength = file.Length;
        if (fileLength < 8) throw Bad($"the file has {fileLength} bytes, fewer than the 8-byte header length");
        Span<byte> lengthBytes = stackalloc byte[8];
        file.Position = 0;
        ulong n;
        byte[] json;
        try
        {
            file.ReadExactly(lengthBytes);
            n = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            if (n > MaxHeader || (long)n > fileLength - 8)
                throw Bad($"the header length is {n} bytes but the file has only {fileLength - 8} bytes after the length field");
            json = new byte[n];
            file.ReadExactly(json);
        }
        catch (EndOfStreamException) { throw Bad($"the file ended inside its header although it had {fileLength} bytes when opened; it shrank while being read"); }
        // Checked up front: System.Text.Json reports invalid UTF-8 inside names only when they are read, and not as a JsonException.
        try { Strict.GetCharCount(json); }
        catch (DecoderFallbackException) { throw Bad("the header is not valid UTF-8 text"); }

        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Bad($"the header is not valid JSON ({e.Message})"); }
        using (doc)
        {
            try { return Interpret(doc.RootElement, json, fileLength, Bad); }
            // A string escape that decodes to a lone UTF-16 surrogate ("\ud800") parses, but cannot be read as a string.
            catch (InvalidOperationException) { throw Bad("the header holds a string escape that is not valid Unicode"); }
        }
    }

    // The header as JSON: the entries, the metadata, and the rule that the entries tile the rest of the file.
    private static SafetensorsHeader Interpret(JsonElement root, byte[] json, long fileLength, Func<string, InvalidDataException> bad)
    {
        long n = json.LongLength;
        if (root.ValueKind != JsonValueKind.Object) throw bad($"the header is a JSON {root.ValueKind}, not an object");
        var entries = new List<Entry>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prop in root.EnumerateObject())
        {
            // JSON allows a repeated key; here it would make the file's meaning depend on which copy a reader keeps.
            if (!names.Add(prop.Name)) throw bad($"the key '{prop.Name}' appears twice in the header");
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw bad("__metadata__ is not an object");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (metadata.ContainsKey(m.Name)) throw bad($"__metadata__ key '{m.Name}' appears twice");
                    if (m.Value.ValueKind != JsonValueKind.String) throw bad($"__metadata__ value '{m.Name}' is a {m.Value.ValueKind}; only strings are allowed");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            entries.Add(ReadEntry(prop, bad));
        }

        long dataLength = fileLength - 8 - n;
        long expectedBegin = 0;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin != expectedBegin)
                throw bad($"tensor '{e.Name}' starts at {e.Begin} but the previous tensor ends at {expectedBegin}; data must be contiguous without gaps or overlap");
            expectedBegin = e.End;
        }
        if (expectedBegin != dataLength)
            throw bad($"the tensors cover {expectedBegin} bytes of data but the data section has {dataLength} bytes");
        return new SafetensorsHeader(entries, metadata, 8 + n, json);
    }

    /// <summary>
    /// The exception for a file that breaks a rule of the format: the message names the file and the rule, and the rule
    /// alone is kept for messages that name the file themselves (<see cref="ProblemOf"/>).
    /// </summary>
    public static InvalidDataException Malformed(string path, string problem)
    {
        // InvalidDataException is sealed, so the rule travels in Exception.Data rather than in a subclass.
        var e = new InvalidDataException($"{path}: not a valid safetensors file: {problem}. The file is corrupt, truncated, or in another format (e.g. a pickled .pt).");
        e.Data[ProblemKey] = problem;
        return e;
    }

    /// <summary>The rule an exception from <see cref="Malformed"/> reports, or the whole message of another one.</summary>
    public static string ProblemOf(InvalidDataException e) => e.Data[ProblemKey] as string ?? e.Message;

    private const string ProblemKey = "Attribution.Safetensors.Problem";

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // The reference implementation refuses headers above 100 MB; a larger N means a corrupt or foreign file.
    private const ulong MaxHeader = 100_000_000;

    // Tensor bytes are copied as they lie in memory, and the format is little-endian.
    public static void RequireLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Safetensors: this reader/writer copies raw memory and needs a little-endian machine.");
    }

    private static Entry ReadEntry(JsonProperty prop, Func<string, InvalidDataException> bad)
    {
        var name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw bad($"entry '{name}' is a {v.ValueKind}, not an object");
        if (!v.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw bad($"tensor '{name}' has no string \"dtype\"");
        var dtype = dtypeElement.GetString()!;
        if (!SafetensorsDType.TryParse(dtype, out var type, out var size))
            throw bad($"tensor '{name}' has dtype \"{dtype}\"; supported: {SafetensorsDType.Supported}");
        var shape = ReadIntegers(v, "shape", name, bad);
        var offsets = ReadIntegers(v, "data_offsets", name, bad);
        if (offsets.Length != 2) throw bad($"tensor '{name}' has {offsets.Length} data_offsets; exactly two [begin, end] are needed");
        if (offsets[0] > offsets[1]) throw bad($"tensor '{name}' has data_offsets [{offsets[0]}, {offsets[1]}] with begin after end");
        long elements = 1;
        try { foreach (var d in shape) elements = checked(elements * d); }
        catch (OverflowException) { throw bad($"tensor '{name}' has shape [{string.Join(", ", shape)}], too large"); }
        long needed;
        try { needed = checked(elements * size); }
        catch (OverflowException) { throw bad($"tensor '{name}' has shape [{string.Join(", ", shape)}], too large"); }
        if (offsets[1] - offsets[0] != needed)
            throw bad($"tensor '{name}' has data_offsets [{offsets[0]}, {offsets[1]}] spanning {offsets[1] - offsets[0]} bytes, but shape [{string.Join(", ", shape)}] x {dtype} needs {needed}");
        return new Entry(name, type, shape, offsets[0], offsets[1]);
    }

    private static long[] ReadIntegers(JsonElement v, string key, string name, Func<string, InvalidDataException> bad)
    {
        if (!v.TryGetProperty(key, out var array) || array.ValueKind != JsonValueKind.Array)
            throw bad($"tensor '{name}' has no \"{key}\" array");
        var result = new List<long>();
        foreach (var x in array.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.Number || !x.TryGetInt64(out var value) || value < 0)
                throw bad($"tensor '{name}': \"{key}\" holds {x.GetRawText()}; only non-negative integers are allowed");
            result.Add(value);
        }
        return result.ToArray();
    }
}
