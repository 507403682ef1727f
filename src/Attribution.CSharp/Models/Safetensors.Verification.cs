using System.Security.Cryptography;
using Attribution.IO;
using TorchSharp;

namespace Attribution.Models;

// Verification of sealed files (see SafetensorsSeal): kept apart from the plain reader and writer in Safetensors.cs.
public static partial class Safetensors
{
    /// <summary>
    /// Checks the file without loading its tensors: the header's structure and size against the file, then (for a sealed
    /// file) the header's checksum and the data section's SHA-256, streamed. Never throws for a bad or absent file: the
    /// status says what was found and the message says it in one line.
    /// </summary>
    public static SafetensorsCheck Verify(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        SafetensorsCheck Result(SafetensorsStatus status, string what) => new(path, status, $"{path}: {what}");
        if (!File.Exists(path)) return Result(SafetensorsStatus.Missing, "no such file");
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            var header = SafetensorsHeader.Read(file, path);
            if (!SafetensorsSeal.IsSealed(header))
                return Result(SafetensorsStatus.NoChecksum, "well-formed but without checksums (written by another tool or an older version), so its bytes cannot be verified");
            if (SafetensorsSeal.HeaderProblem(header) is { } headerProblem) return Result(SafetensorsStatus.Mismatch, headerProblem);
            if (SafetensorsSeal.ContentProblem(header, DataSha256(file, header.DataStart, header.DataLength, path)) is { } dataProblem) return Result(SafetensorsStatus.Mismatch, dataProblem);
            return Result(SafetensorsStatus.Valid, $"valid ({header.Entries.Count} tensors, {header.DataLength} data bytes, checksums match)");
        }
        catch (InvalidDataException e) { return Result(SafetensorsStatus.Malformed, $"not a valid safetensors file: {SafetensorsHeader.ProblemOf(e)}"); }
        catch (FileNotFoundException) { return Result(SafetensorsStatus.Missing, "no such file (it disappeared while being checked)"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return Result(SafetensorsStatus.Unreadable, $"cannot be read ({e.Message})"); }
    }

    /// <summary>
    /// Reads every tensor as <see cref="Load"/> does, reading the file once, and checks its checksums as it goes; for the
    /// engine's own caches, whose files <see cref="Save"/> wrote. The caller owns (and disposes) the tensors.
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    /// <exception cref="CorruptFileException">The file is malformed or truncated, carries no checksums, or its header or
    /// data does not match them; no tensor is returned.</exception>
    public static Dictionary<string, torch.Tensor> LoadVerified(string path) => LoadVerifiedWithMetadata(path).Tensors;

    /// <summary>
    /// <see cref="LoadVerified"/> with the file's <c>__metadata__</c> strings, read from the same open file: another
    /// process may replace or delete the path right after, and a second read would see that.
    /// </summary>
    public static (Dictionary<string, torch.Tensor> Tensors, IReadOnlyDictionary<string, string> Metadata) LoadVerifiedWithMetadata(string path)
    {
        using var file = OpenChecked(path);
        SafetensorsHeader header;
        try { header = SafetensorsHeader.Read(file, path); }
        catch (InvalidDataException e) { throw new CorruptFileException(path, $"not a valid safetensors file: {SafetensorsHeader.ProblemOf(e)}", e); }
        if (!SafetensorsSeal.IsSealed(header))
            throw new CorruptFileException(path, "the file carries no checksums (content_sha256, header_sha256), so it cannot be verified; it was written by another tool or an older version");
        if (SafetensorsSeal.HeaderProblem(header) is { } headerProblem) throw new CorruptFileException(path, headerProblem);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Dictionary<string, torch.Tensor> tensors;
        try { tensors = ReadTensors(file, header, path, hash); }
        catch (InvalidDataException e) { throw new CorruptFileException(path, $"not a valid safetensors file: {SafetensorsHeader.ProblemOf(e)}", e); }
        if (SafetensorsSeal.ContentProblem(header, Convert.ToHexStringLower(hash.GetHashAndReset())) is { } dataProblem)
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw new CorruptFileException(path, dataProblem);
        }
        return (tensors, header.Metadata);
    }

    /// <summary>The SHA-256 (lowercase hex) of <paramref name="length"/> data bytes from <paramref name="start"/>, read in chunks,
    /// so that a file of any size is hashed in constant memory (the checker and the row writer's seal).</summary>
    internal static string DataSha256(Stream file, long start, long length, string path)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        file.Position = start;
        for (long left = length; left > 0;)
        {
            int read = file.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (read == 0) throw SafetensorsHeader.Malformed(path, $"the data section ends {left} bytes early; the file was truncated while it was being read");
            hash.AppendData(buffer, 0, read);
            left -= read;
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
