namespace Attribution.IO;

/// <summary>
/// A file that should hold a complete, verified artefact does not: it is truncated, its structure is broken,
/// it carries no checksum, or its bytes no longer match the checksum recorded when it was written.
/// </summary>
/// <remarks>
/// An <see cref="IOException"/>, so code that already treats unreadable files as I/O failures keeps working;
/// a cache catches this type specifically to move the file aside (<see cref="CorruptFiles.MoveAside"/>) and rebuild it.
/// </remarks>
public sealed class CorruptFileException : IOException
{
    /// <summary>The damaged file.</summary>
    public string Path { get; }

    /// <summary>What is wrong with it, in one sentence without the path.</summary>
    public string Reason { get; }

    /// <summary>A corrupt file; the message is "<paramref name="path"/>: <paramref name="reason"/>".</summary>
    public CorruptFileException(string path, string reason, Exception? inner = null)
        : base($"{path}: {reason}", inner)
    {
        Path = path;
        Reason = reason;
    }
}
