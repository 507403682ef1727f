using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>
/// Reads blocks of rows (the first dimension) of a safetensors file's tensors without loading the rest, so that a
/// consumer of a step's maps holds one block at a time. The file stays open until disposed; its header is read once.
/// </summary>
/// <remarks>
/// Checksums are not checked here: a block is a slice of the data section, whose checksum covers all of it. Verify the
/// file once (<see cref="Safetensors.Verify"/>) before reading it in blocks.
/// </remarks>
public sealed class SafetensorsRows : IDisposable
{
    private readonly FileStream _file;
    private readonly SafetensorsHeader _header;
    private readonly string _path;

    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is malformed; the message names it and the rule broken.</exception>
    public SafetensorsRows(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"SafetensorsRows: no file at '{path}'.", path);
        _path = path;
        _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.RandomAccess);
        try { _header = SafetensorsHeader.Read(_file, path); }
        catch { _file.Dispose(); throw; }
    }

    /// <summary>The names of the file's tensors.</summary>
    public IEnumerable<string> Names => _header.Entries.Select(e => e.Name);

    /// <summary>The file's <c>__metadata__</c> strings.</summary>
    public IReadOnlyDictionary<string, string> Metadata => _header.Metadata;

    /// <summary>The element type of a tensor.</summary>
    public ScalarType Type(string name) => Entry(name).Type;

    /// <summary>The full shape of a tensor.</summary>
    public long[] Shape(string name) => (long[])Entry(name).Shape.Clone();

    /// <summary>Rows <paramref name="first"/> .. <paramref name="first"/> + <paramref name="count"/> - 1 of a tensor of rank at least 1, as a CPU tensor the caller owns.</summary>
    /// <exception cref="ArgumentException">The tensor is absent, of rank 0, or the rows lie outside it.</exception>
    public Tensor Read(string name, long first, long count)
    {
        var entry = Entry(name);
        if (entry.Shape.Length == 0) throw new ArgumentException($"SafetensorsRows: '{name}' in {_path} is a scalar; it has no rows.", nameof(name));
        if (first < 0 || count < 0 || first + count > entry.Shape[0])
            throw new ArgumentException($"SafetensorsRows: rows {first}..{first + count - 1} of '{name}' lie outside its {entry.Shape[0]} rows ({_path}).", nameof(first));
        var shape = entry.Shape.ToArray();
        shape[0] = count;
        long rowBytes = entry.Shape[0] == 0 ? 0 : entry.ByteLength / entry.Shape[0];
        var tensor = empty(shape, entry.Type);
        if (count == 0) return tensor;
        var buffer = new byte[checked(count * rowBytes)];
        _file.Position = _header.DataStart + entry.Begin + first * rowBytes;
        try { _file.ReadExactly(buffer); }
        catch (EndOfStreamException)
        {
            tensor.Dispose();
            throw SafetensorsHeader.Malformed(_path, $"the data section ends inside rows {first}..{first + count - 1} of '{name}'; the file was truncated");
        }
        tensor.bytes = buffer;
        return tensor;
    }

    /// <summary>All of a tensor (a per-input diagnostic, say), as a CPU tensor the caller owns.</summary>
    public Tensor ReadAll(string name)
    {
        var entry = Entry(name);
        if (entry.Shape.Length > 0) return Read(name, 0, entry.Shape[0]);
        var tensor = empty(entry.Shape, entry.Type);
        var buffer = new byte[entry.ByteLength];
        _file.Position = _header.DataStart + entry.Begin;
        _file.ReadExactly(buffer);
        tensor.bytes = buffer;
        return tensor;
    }

    public void Dispose() => _file.Dispose();

    private SafetensorsHeader.Entry Entry(string name) =>
        _header.Entries.FirstOrDefault(e => e.Name == name)
        ?? throw new ArgumentException($"SafetensorsRows: {_path} has no tensor '{name}' (it has {string.Join(", ", Names)}).", nameof(name));
}
