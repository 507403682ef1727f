using System.Runtime.InteropServices;

namespace Attribution.IO;

/// <summary>
/// A symbolic link re-pointed atomically: a new link is made beside it and renamed over it (rename(2) replaces a
/// link in one step, so a reader sees the old target or the new one, never no link). .NET's File.Move follows a
/// link to a folder and refuses it, hence libc.
/// </summary>
public static class AtomicLink
{
    /// <summary>Makes <paramref name="link"/> point at <paramref name="target"/> (relative to the link's folder, or absolute).</summary>
    public static void Point(string link, string target)
    {
        var full = Path.GetFullPath(link);
        var temp = $"{full}.link-{Environment.ProcessId}-{Guid.NewGuid():N}";
        File.CreateSymbolicLink(temp, target);
        if (rename(temp, full) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            File.Delete(temp);
            throw new IOException($"could not point {full} at {target} (rename failed, errno {errno})");
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int rename([MarshalAs(UnmanagedType.LPUTF8Str)] string oldPath, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath);
}
