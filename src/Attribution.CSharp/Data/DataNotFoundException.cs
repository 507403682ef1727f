using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
namespace Attribution.Data;

/// <summary>
/// A dataset file is not on disk. The message names the file, the Debian package that provides it
/// and the command that installs it, because the fix is always the same and the user should not
/// have to search for it.
/// </summary>
public sealed class DataNotFoundException : Exception
{
    /// <summary>The file that was looked for.</summary>
    public string MissingPath { get; }

    /// <summary>The Debian package that installs the file.</summary>
    public string DebianPackage { get; }

    public DataNotFoundException(string missingPath, string debianPackage)
        : base($"Dataset file not found: '{missingPath}'. It comes from Debian's package `{debianPackage}`; "
             + $"install it with `sudo apt-get install {debianPackage}`, or pass the folder that holds the files as the root.")
    {
        MissingPath = missingPath;
        DebianPackage = debianPackage;
    }
}
