using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Buffers.Binary;
using System.IO.Compression;

namespace Attribution.Data;

/// <summary>
/// Reader for LeCun's IDX format (MNIST, Fashion-MNIST), gzip-compressed: a big-endian magic number
/// 0x0000TTDD (TT = element type, DD = number of dimensions), DD big-endian u32 sizes, then the
/// elements. Only unsigned bytes (TT = 0x08) occur in these datasets.
/// </summary>
internal static class IdxFile
{
    /// <summary>Reads an unsigned-byte IDX file with <paramref name="rank"/> dimensions.</summary>
    /// <returns>The sizes and the element bytes (exactly their product).</returns>
    public static (int[] Dims, byte[] Data) ReadUBytes(string path, int rank, string package)
    {
        if (!File.Exists(path)) throw new DataNotFoundException(path, package);
        byte[] all;
        try
        {
            using var file = File.OpenRead(path);
            using var gz = new GZipStream(file, CompressionMode.Decompress);
            using var memory = new MemoryStream();
            gz.CopyTo(memory);
            all = memory.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: not a valid gzip file ({e.Message}). Reinstall it with `sudo apt-get install --reinstall {package}`.", e);
        }
        int headerLength = 4 + 4 * rank;
        if (all.Length < headerLength)
            throw Corrupt(path, package, $"{all.Length} bytes, shorter than the {headerLength}-byte IDX header");
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(all);
        uint expected = 0x0800u | (uint)rank;
        if (magic != expected)
            throw Corrupt(path, package, $"magic number 0x{magic:X8}, expected 0x{expected:X8} (unsigned bytes, {rank} dimensions)");
        var dims = new int[rank];
        long count = 1;
        for (int d = 0; d < rank; d++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(all.AsSpan(4 + 4 * d));
            if (size > int.MaxValue) throw Corrupt(path, package, $"dimension {d} has size {size}");
            dims[d] = (int)size;
            count *= size;
        }
        long available = all.LongLength - headerLength;
        if (available != count)
            throw Corrupt(path, package, $"header [{string.Join(" x ", dims)}] announces {count} bytes of data but the file holds {available} ({(available < count ? "truncated" : "trailing bytes")})");
        return (dims, all.AsSpan(headerLength).ToArray());
    }

    private static InvalidDataException Corrupt(string path, string package, string what) =>
        new($"{path}: malformed IDX file: {what}. Reinstall it with `sudo apt-get install --reinstall {package}`.");
}
