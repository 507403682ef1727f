using System.Globalization;

namespace Attribution.IO;

/// <summary>Keeps a damaged file for inspection while getting it out of the way of the code that rebuilds it.</summary>
public static class CorruptFiles
{
    /// <summary>
    /// Renames <paramref name="path"/> to <c>&lt;path&gt;.corrupt-&lt;UTC time&gt;</c> (e.g. <c>x.safetensors.corrupt-20261202T101530Z</c>)
    /// in the same folder and returns the new path; a counter is appended when that name is taken.
    /// </summary>
    /// <remarks>
    /// Renamed rather than deleted: the bytes may show what damaged the file (a full disk, a killed writer,
    /// another program), and a rename is atomic, so a reader sees either the old file or no file.
    /// </remarks>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    public static string MoveAside(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"CorruptFiles.MoveAside: no file at '{path}'.", path);
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        for (int attempt = 1; ; attempt++)
        {
            var target = attempt == 1 ? $"{path}.corrupt-{stamp}" : $"{path}.corrupt-{stamp}-{attempt}";
            if (File.Exists(target)) continue;
            try
            {
                File.Move(path, target, overwrite: false);
                return target;
            }
            // Another process took the name between the check and the move: try the next one.
            catch (IOException) when (File.Exists(target) && File.Exists(path)) { }
        }
    }
}
