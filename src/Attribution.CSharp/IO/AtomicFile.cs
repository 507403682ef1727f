using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;

namespace Attribution.IO;

/// <summary>
/// Writes a file so that readers (and a process that restarts after a crash) see either the old
/// content or the complete new content, never a prefix: the bytes go to a temporary file in the same
/// folder, are flushed to disk, and the temporary file is then renamed over the target.
/// </summary>
/// <remarks>
/// The temporary file must live in the target's folder because rename(2) is atomic only within one
/// file system. The folder is fsynced after the rename (on Linux) so that the new directory entry
/// itself survives a power loss, not only the file's bytes.
/// </remarks>
public static class AtomicFile
{
    /// <summary>Suffix of the temporary files; a leftover one (after a kill) is safe to delete.</summary>
    public const string TempSuffix = ".tmp~";

    /// <summary>Writes the target through <paramref name="write"/>, atomically; creates the folder.</summary>
    /// <exception cref="ArgumentException">The path is empty or names a folder.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        if (string.IsNullOrWhiteSpace(path))
            throw new ArgumentException("AtomicFile.Write needs a file path; got an empty string.", nameof(path));
        var temp = Temporary(path, "AtomicFile.Write");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            Publish(temp, path);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Writes UTF-8 text (no byte-order mark) atomically.</summary>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        WriteAllBytes(path, new System.Text.UTF8Encoding(false).GetBytes(text));
    }

    /// <summary>Writes the bytes atomically.</summary>
    public static void WriteAllBytes(string path, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        Write(path, s => s.Write(bytes, 0, bytes.Length));
    }

    /// <summary>
    /// A fresh temporary path beside <paramref name="path"/> (creating its folder), for a writer that cannot write in one
    /// pass through <see cref="Write"/> (it seeks); hand it to <see cref="Publish"/> once it is complete, or delete it.
    /// </summary>
    public static string TemporaryBeside(string path) => Temporary(path, "AtomicFile");

    private static string Temporary(string path, string caller)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new ArgumentException($"{caller}: '{full}' is a folder; pass the path of a file inside it.", nameof(path));
        var folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        // Hidden, unique name: two writers of the same target never share a temporary file.
        return Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}{TempSuffix}");
    }

    /// <summary>Renames a complete temporary file (flushed to disk by its writer) over <paramref name="path"/>, durably.</summary>
    public static void Publish(string temporary, string path)
    {
        var full = Path.GetFullPath(path);
        File.Move(temporary, full, overwrite: true);
        SyncFolder(Path.GetDirectoryName(full)!);
    }

    internal static void TryDelete(string file)
    {
        try { File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    // .NET cannot open a folder as a stream, so the directory fsync goes through libc.
    // Best effort: the file's own bytes are already durable; only the rename could be lost.
    private static void SyncFolder(string folder)
    {
        if (!OperatingSystem.IsLinux()) return;
        const int O_RDONLY = 0, O_DIRECTORY = 0x10000;
        int fd = open(folder, O_RDONLY | O_DIRECTORY);
        if (fd < 0) return;
        fsync(fd);
        close(fd);
    }

    [DllImport("libc", SetLastError = true)] private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
    [DllImport("libc", SetLastError = true)] private static extern int fsync(int fd);
    [DllImport("libc", SetLastError = true)] private static extern int close(int fd);
}
