using System.Security.Cryptography;
using System.Text;

namespace Attribution.Models;

/// <summary>
/// The two checksums <see cref="Safetensors.Save"/> records in <c>__metadata__</c>: <c>content_sha256</c>, the SHA-256 of
/// the data section (every byte after the header), and <c>header_sha256</c>, the SHA-256 of the header itself.
/// </summary>
/// <remarks>
/// The data checksum alone would miss damage to the header that still parses: a bit flipped in a tensor name or a
/// metadata value (a run time, a sample rate) would load silently. The header checksum is the SHA-256 of the N header
/// bytes (JSON and padding) as written, with the 64 hex digits of its own value read as ASCII '0'; the key is found
/// as the literal bytes <c>"header_sha256":"</c>, which occur once because System.Text.Json escapes every quote
/// inside names and values. Together they make every single-bit flip of a sealed file detectable (the length field
/// is covered by the header's size check against the file).
/// </remarks>
internal static class SafetensorsSeal
{
    public const string ContentKey = "content_sha256";
    public const string HeaderKey = "header_sha256";
    public const int HexLength = 64;

    public static bool IsReserved(string metadataKey) => metadataKey is ContentKey or HeaderKey;

    /// <summary>The value written for <see cref="HeaderKey"/> before the header is hashed.</summary>
    public static readonly string Placeholder = new('0', HexLength);

    /// <summary>Replaces the placeholder value of <see cref="HeaderKey"/> in <paramref name="header"/> by the header's checksum.</summary>
    public static void SealHeader(byte[] header)
    {
        int start = ValueStart(header) ?? throw new InvalidOperationException("SafetensorsSeal: the header to seal has no single header_sha256 entry; this is a bug in Safetensors.Save.");
        var hex = Encoding.ASCII.GetBytes(HeaderHash(header, start));
        hex.CopyTo(header, start);
    }

    /// <summary>
    /// Null when the header carries both checksums and its own matches; otherwise what is wrong. Call only for a header
    /// that carries at least one of them (one without either is simply unsealed).
    /// </summary>
    public static string? HeaderProblem(SafetensorsHeader header)
    {
        if (!header.Metadata.TryGetValue(ContentKey, out _)) return $"the header has {HeaderKey} but no {ContentKey}: the header is damaged";
        if (!header.Metadata.TryGetValue(HeaderKey, out var stored)) return $"the header has {ContentKey} but no {HeaderKey}: the header is damaged";
        if (ValueStart(header.Json) is not { } start || !Encoding.ASCII.GetString(header.Json, start, HexLength).Equals(stored, StringComparison.Ordinal))
            return $"the {HeaderKey} entry is not where this writer puts it: the header is damaged or was edited";
        var actual = HeaderHash(header.Json, start);
        return actual == stored ? null : $"the header does not match its checksum (recorded {HeaderKey} {stored}, the header hashes to {actual}): the header is damaged";
    }

    /// <summary>Null when the data section's hash equals the recorded <see cref="ContentKey"/>; otherwise what is wrong.</summary>
    public static string? ContentProblem(SafetensorsHeader header, string actual)
    {
        var stored = header.Metadata[ContentKey];
        return actual == stored ? null : $"the data does not match its checksum (recorded {ContentKey} {stored}, the data hashes to {actual}): the data section is damaged";
    }

    /// <summary>Whether the header carries either checksum, i.e. was sealed by this writer (and is to be verified).</summary>
    public static bool IsSealed(SafetensorsHeader header) =>
        header.Metadata.ContainsKey(ContentKey) || header.Metadata.ContainsKey(HeaderKey);

    private static readonly byte[] KeyBytes = Encoding.ASCII.GetBytes($"\"{HeaderKey}\":\"");

    private static int? ValueStart(byte[] header)
    {
        int at = header.AsSpan().IndexOf(KeyBytes);
        if (at < 0 || header.AsSpan().LastIndexOf(KeyBytes) != at) return null;
        int start = at + KeyBytes.Length;
        return start + HexLength < header.Length && header[start + HexLength] == (byte)'"' ? start : null;
    }

    private static string HeaderHash(byte[] header, int valueStart)
    {
        var copy = (byte[])header.Clone();
        copy.AsSpan(valueStart, HexLength).Fill((byte)'0');
        return Convert.ToHexStringLower(SHA256.HashData(copy));
    }
}
