using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using static TorchSharp.torch;

namespace Attribution.Models;

/// <summary>The safetensors dtype strings this toolkit reads and writes, and their TorchSharp types.</summary>
internal static class SafetensorsDType
{
    private static readonly (string Name, ScalarType Type, int Size)[] Table =
    {
        ("F32", ScalarType.Float32, 4), ("F64", ScalarType.Float64, 8), ("F16", ScalarType.Float16, 2),
        ("BF16", ScalarType.BFloat16, 2), ("I64", ScalarType.Int64, 8), ("I32", ScalarType.Int32, 4),
        ("I16", ScalarType.Int16, 2), ("I8", ScalarType.Int8, 1), ("U8", ScalarType.Byte, 1), ("BOOL", ScalarType.Bool, 1),
    };

    public static string Supported => string.Join(", ", Table.Select(t => t.Name));

    public static bool TryParse(string name, out ScalarType type, out int size)
    {
        foreach (var t in Table)
            if (t.Name == name) { type = t.Type; size = t.Size; return true; }
        type = default; size = 0;
        return false;
    }

    public static (string Name, int Size) Of(ScalarType type, string tensorName)
    {
        foreach (var t in Table)
            if (t.Type == type) return (t.Name, t.Size);
        throw new NotSupportedException($"Safetensors: tensor '{tensorName}' has dtype {type}, which this writer does not support ({Supported}). Convert it first, e.g. .to(float32).");
    }
}
