namespace Attribution.Models;

/// <summary>What <see cref="Safetensors.Verify"/> found.</summary>
public enum SafetensorsStatus
{
    /// <summary>Well-formed, and the header and data match the checksums recorded when the file was written.</summary>
    Valid,
    /// <summary>Well-formed but unsealed: written by another tool (e.g. PyTorch's <c>safetensors</c>) or by an older version of this toolkit, so its bytes cannot be checked.</summary>
    NoChecksum,
    /// <summary>Well-formed, but the header or the data no longer matches its recorded checksum (or a checksum entry is damaged).</summary>
    Mismatch,
    /// <summary>Not a valid safetensors file: empty, truncated, trailing bytes, a broken header, offsets that do not tile the data.</summary>
    Malformed,
    /// <summary>There is no file at the path.</summary>
    Missing,
    /// <summary>The file exists but could not be read (permissions, an I/O error).</summary>
    Unreadable,
}

/// <summary>The result of <see cref="Safetensors.Verify"/>: the file, its status and one line for a person to read.</summary>
/// <param name="Path">The file checked, as given.</param>
/// <param name="Status">What was found.</param>
/// <param name="Message">One line naming the file and, unless it is valid, what is wrong with it.</param>
public sealed record SafetensorsCheck(string Path, SafetensorsStatus Status, string Message)
{
    /// <summary>Whether the file is sealed and intact (<see cref="SafetensorsStatus.Valid"/>).</summary>
    public bool IsValid => Status == SafetensorsStatus.Valid;

    /// <inheritdoc/>
    public override string ToString() => Message;
}
