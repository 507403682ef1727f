namespace Attribution.Performance;

/// <summary>
/// Resident memory of this process as Linux reports it (/proc/self/status): the current RSS and its peak (VmHWM),
/// which <see cref="ResetPeak"/> sets back to the current RSS, so that each measured piece of work gets its own peak.
/// Elsewhere (no /proc) the figures are null.
/// </summary>
public static class ProcessMemory
{
    const string Status = "/proc/self/status";

    /// <summary>Peak resident memory in bytes since the process started or since the last <see cref="ResetPeak"/>.</summary>
    public static long? PeakBytes => Read("VmHWM:");

    /// <summary>Resident memory in bytes now.</summary>
    public static long? CurrentBytes => Read("VmRSS:");

    /// <summary>Sets the peak back to the current RSS (writing 5 to clear_refs); false where the kernel does not allow it.</summary>
    public static bool ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    static long? Read(string field)
    {
        if (!File.Exists(Status)) return null;
        foreach (var line in File.ReadLines(Status))
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                var parts = line.Substring(field.Length).Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[0]) * 1024;   // the kernel reports kB
            }
        return null;
    }
}
