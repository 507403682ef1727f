using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Attribution.IO;

/// <summary>
/// SHA-256 of user files (data, weights, configuration), so that results can be keyed by what a file holds
/// rather than by its name or timestamp, with a memo that skips re-reading a file the file system says is unchanged.
/// </summary>
public static class ContentHash
{
    /// <summary>The SHA-256 of the file's bytes, lowercase hex, read in a stream (the file is never held in memory).</summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    public static string Sha256OfFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// The SHA-256 of the file's bytes (as <see cref="Sha256OfFile"/>), taken from a memo in <paramref name="memoFolder"/>
    /// when the file's <see cref="FileIdentity"/> (device, inode, size, ctime, mtime) equals the one recorded with it.
    /// </summary>
    /// <remarks>
    /// <para>One small JSON memo per absolute path, named by a hash of the path, written atomically. The memo is trusted
    /// only on an exact identity match; ctime is part of it because, unlike mtime, no program can set it back after an
    /// edit. Where no identity can be read (not Linux, an exotic file system) the file is hashed every time.</para>
    /// <para>The memo is written only when the identity read before hashing equals the one read after (the file did not
    /// change while it was read) and the file's last change lies at least <see cref="RecentChange"/> in the past:
    /// file systems store ctime at a coarse granularity (a clock tick, or a whole second on some), so a second write
    /// within the same tick as the first could leave an identical identity over different bytes (git's "racily clean" case).</para>
    /// <para>A memo that cannot be read or parsed is ignored, and one that cannot be written is skipped: the memo only
    /// saves time, the returned hash is always that of the file's current bytes.</para>
    /// </remarks>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    public static string OfFile(string path, string memoFolder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentException.ThrowIfNullOrWhiteSpace(memoFolder);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"ContentHash.OfFile: no file at '{full}'.", full);
        var memoPath = MemoPath(memoFolder, full);
        var before = FileIdentity.Of(full);
        if (before is not null && ReadMemo(memoPath, full) is { } memo && memo.Identity == before) return memo.Sha256;
        var hash = Sha256OfFile(full);
        var after = FileIdentity.Of(full);
        if (before is not null && before == after && !ChangedRecently(before)) WriteMemo(memoPath, new Memo(MemoVersion, full, before, hash));
        return hash;
    }

    /// <summary>How long ago a file's last change must lie before its hash is memoised (see <see cref="OfFile"/>).</summary>
    public static readonly TimeSpan RecentChange = TimeSpan.FromSeconds(2);

    /// <summary>The memo file of <paramref name="fullPath"/> in <paramref name="memoFolder"/>.</summary>
    public static string MemoPath(string memoFolder, string fullPath) =>
        Path.Combine(memoFolder, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(fullPath)))[..32] + ".json");

    private const int MemoVersion = 1;

    private sealed record Memo(int Version, string Path, FileIdentity Identity, string Sha256);

    // Null annotations and constructor parameters are enforced, so a memo with a missing or null field fails to parse.
    private static readonly JsonSerializerOptions Json = new()
    {
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };

    // A future ctime (clock skew on a network file system) also counts as recent: the memo is then never written.
    private static bool ChangedRecently(FileIdentity identity)
    {
        long nowNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        return identity.ChangeTimeNs > nowNs - RecentChange.Ticks * 100;
    }

    private static Memo? ReadMemo(string memoPath, string fullPath)
    {
        try
        {
            if (!File.Exists(memoPath)) return null;
            var memo = JsonSerializer.Deserialize<Memo>(File.ReadAllBytes(memoPath), Json);
            // The path check guards against a memo copied from elsewhere; the hash check against a damaged value.
            return memo is { Version: MemoVersion } && memo.Path == fullPath && IsSha256Hex(memo.Sha256) ? memo : null;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return null;
        }
    }

    private static void WriteMemo(string memoPath, Memo memo)
    {
        try { AtomicFile.WriteAllBytes(memoPath, JsonSerializer.SerializeToUtf8Bytes(memo, Json)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static bool IsSha256Hex(string s) => s.Length == 64 && s.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}
