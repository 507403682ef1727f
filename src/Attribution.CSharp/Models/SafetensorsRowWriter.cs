using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Attribution.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// Writes a sealed safetensors file a block of rows at a time, so that tensors larger than memory (a step's maps of
/// 50,000 images) are stored without ever being whole: the shapes are declared first, each block lands at its rows'
/// place, and <see cref="Commit"/> checks that every row was written, seals the file and renames it into place.
/// </summary>
/// <remarks>
/// The file is byte for byte what <see cref="Safetensors.Save"/> writes for the same tensors and metadata: the same
/// name order, header and checksums. Until <see cref="Commit"/> the bytes live in a temporary file beside the target
/// (deleted by <see cref="Dispose"/> when the writer is abandoned), so a crash never leaves a partial file at the path.
/// Rows are the first dimension; a tensor of rank 0 is one row.
/// </remarks>
public sealed class SafetensorsRowWriter : IDisposable
{
    private sealed record Slot(string Name, ScalarType Type, long[] Shape, long Begin, long RowBytes, bool[] Written);

    private readonly string _path;
    private readonly string _temporary;
    private IReadOnlyDictionary<string, string>? _metadata;
    private readonly List<Slot> _slots = new();
    private readonly long _dataStart;
    private FileStream? _file;

    /// <summary>Declares the file's tensors (name, dtype, full shape) and metadata, and reserves their bytes.</summary>
    /// <exception cref="ArgumentException">A reserved name or metadata key, a repeated name, or an unsupported dtype.</exception>
    public SafetensorsRowWriter(string path, IEnumerable<(string Name, ScalarType Type, long[] Shape)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        SafetensorsHeader.RequireLittleEndian();
        var declared = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToArray();
        Safetensors.RequireWritable(declared.Select(t => t.Name), metadata, nameof(SafetensorsRowWriter));
        if (declared.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"{nameof(SafetensorsRowWriter)}: the tensor '{twice.Key}' is declared twice.", nameof(tensors));
        long offset = 0;
        foreach (var (name, type, shape) in declared)
        {
            var (_, size) = SafetensorsDType.Of(type, name);
            long rows = shape.Length == 0 ? 1 : shape[0];
            long rowBytes = size * shape.Skip(1).Aggregate(1L, (a, d) => a * d);
            _slots.Add(new Slot(name, type, (long[])shape.Clone(), offset, rowBytes, new bool[rows]));
            offset += rows * rowBytes;
        }
        _path = path;
        _metadata = metadata;
        var header = Header(new string('0', SafetensorsSeal.HexLength));
        _dataStart = 8 + header.Length;
        _temporary = AtomicFile.TemporaryBeside(path);
        _file = new FileStream(_temporary, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        _file.SetLength(_dataStart + offset);
    }

    /// <summary>Writes <paramref name="rows"/> (any device; converted to CPU) as rows <paramref name="firstRow"/> onwards of a declared tensor.</summary>
    /// <exception cref="ArgumentException">The tensor is not declared, or the block's dtype, row shape or extent does not fit.</exception>
    public void Write(string name, long firstRow, Tensor rows)
    {
        var file = _file ?? throw new ObjectDisposedException(nameof(SafetensorsRowWriter));
        var slot = _slots.Find(s => s.Name == name)
                   ?? throw new ArgumentException($"{nameof(SafetensorsRowWriter)}: '{name}' was not declared (declared: {string.Join(", ", _slots.Select(s => s.Name))}).", nameof(name));
        if (rows.dtype != slot.Type)
            throw new ArgumentException($"{nameof(SafetensorsRowWriter)}: '{name}' was declared {slot.Type}; the block is {rows.dtype}.", nameof(rows));
        bool scalar = slot.Shape.Length == 0;
        var rowShape = scalar ? Array.Empty<long>() : slot.Shape[1..];
        long count = scalar ? 1 : rows.shape[0];
        if (!(scalar ? rows.shape.Length == 0 : rows.shape[1..].SequenceEqual(rowShape)))
            throw new ArgumentException($"{nameof(SafetensorsRowWriter)}: '{name}' has rows of shape [{string.Join(", ", rowShape)}]; the block is [{string.Join(", ", rows.shape)}].", nameof(rows));
        if (firstRow < 0 || firstRow + count > slot.Written.LongLength)
            throw new ArgumentException($"{nameof(SafetensorsRowWriter)}: rows {firstRow}..{firstRow + count - 1} of '{name}' lie outside its {slot.Written.LongLength} rows.", nameof(firstRow));
        using var scope = NewDisposeScope();
        file.Position = _dataStart + slot.Begin + firstRow * slot.RowBytes;
        file.Write(rows.detach().cpu().contiguous().bytes);
        Array.Fill(slot.Written, true, (int)firstRow, (int)count);
    }

    /// <summary>
    /// Seals the file (its data's SHA-256, read back in chunks) and renames it over the path. <paramref name="metadata"/>,
    /// when given, replaces the metadata declared at the start (a run time known only at the end, say).
    /// </summary>
    /// <exception cref="InvalidOperationException">Some rows were never written; nothing is published.</exception>
    public void Commit(IReadOnlyDictionary<string, string>? metadata = null)
    {
        var file = _file ?? throw new ObjectDisposedException(nameof(SafetensorsRowWriter));
        foreach (var slot in _slots)
        {
            int missing = slot.Written.Count(w => !w);
            if (missing > 0)
                throw new InvalidOperationException($"{nameof(SafetensorsRowWriter)}: {missing} of the {slot.Written.Length} rows of '{slot.Name}' were never written (the first: row {Array.IndexOf(slot.Written, false)}); {_path} is not written.");
        }
        if (metadata is not null)
        {
            Safetensors.RequireWritable(_slots.Select(s => s.Name), metadata, nameof(SafetensorsRowWriter));
            _metadata = metadata;
        }
        var header = Header(Safetensors.DataSha256(file, _dataStart, file.Length - _dataStart, _temporary));
        if (8 + header.Length == _dataStart)
        {
            WriteHeader(file, header);
            file.Flush(flushToDisk: true);
            file.Dispose();
            _file = null;
            AtomicFile.Publish(_temporary, _path);
            return;
        }
        // The new metadata changed the header's length: the data moves behind the new header, copied in chunks.
        var moved = AtomicFile.TemporaryBeside(_path);
        try
        {
            using (var target = new FileStream(moved, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                WriteHeader(target, header);
                file.Position = _dataStart;
                file.CopyTo(target, 1 << 20);
                target.Flush(flushToDisk: true);
            }
            AtomicFile.Publish(moved, _path);
        }
        catch
        {
            AtomicFile.TryDelete(moved);
            throw;
        }
        Dispose();
    }

    private static void WriteHeader(Stream stream, byte[] header)
    {
        stream.Position = 0;
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
    }

    /// <summary>Abandons an uncommitted file: its temporary bytes are deleted.</summary>
    public void Dispose()
    {
        if (_file is null) return;
        _file.Dispose();
        _file = null;
        AtomicFile.TryDelete(_temporary);
    }

    private byte[] Header(string contentSha256) =>
        Safetensors.SealedHeader(_slots.Select(s => (s.Name, SafetensorsDType.Of(s.Type, s.Name).Name, s.Shape, s.Written.LongLength * s.RowBytes)).ToArray(),
                                 _metadata, contentSha256);
}
