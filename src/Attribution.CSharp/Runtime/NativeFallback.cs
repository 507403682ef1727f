using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using System.Security.Cryptography;
using TorchSharp;

namespace Attribution.Runtime;

/// <summary>
/// Makes TorchSharp's native glue load on Linux systems whose libstdc++ predates GLIBCXX_3.4.32 (Debian 12), in any
/// program that uses this library: the toolkit's own projects patch their build output (Directory.Build.targets), but a
/// user's project, an F# script or a notebook gets TorchSharp's unpatched <c>libLibTorchSharp.so</c>. When TorchSharp
/// fails to load it, .NET asks <see cref="AssemblyLoadContext.ResolvingUnmanagedDll"/>; this handler then patches a copy
/// once, with the same script as the build (shipped beside this assembly in <c>native-patch/</c>), in
/// <c>$XDG_CACHE_HOME/attribution/natives/&lt;hash&gt;/</c>, and loads it. The patched copy's other dependencies
/// (libtorch_cpu, libc10) are the ones TorchSharp has already loaded.
/// </summary>
/// <remarks>
/// The handler is registered when this assembly is first used, and by <see cref="TorchRuntime.Initialise"/>: a
/// program that touches TorchSharp before anything of this library calls <c>TorchRuntime.Initialise()</c> first. The
/// patch needs <c>bash</c>, <c>patchelf</c>, <c>gcc</c> and <c>g++</c> (Debian: <c>apt-get install patchelf g++</c>);
/// without them the error says so.
/// </remarks>
public static class NativeFallback
{
    const string Glue = "LibTorchSharp";
    static readonly object Gate = new();
    static bool registered;
    static IntPtr loaded;

    /// <summary>The reason the last fallback failed, if it did (shown by TorchRuntime's errors).</summary>
    public static string? Failure { get; private set; }

    // A library's module initializer is what CA2255 warns about; here it is the point: the handler must be in place
    // before TorchSharp's first load, which may come from this library's first use.
#pragma warning disable CA2255
    [ModuleInitializer]
    internal static void RegisterOnLoad()
    {
        // before any convolution of libtorch's: see OneDnnIsa
        OneDnnIsa.Apply();
        Register();
    }
#pragma warning restore CA2255

    /// <summary>Registers the handler and loads TorchSharp's own libtorch by path (see <see cref="PreloadLibTorch"/>); safe to call many times.</summary>
    public static void Register()
    {
        lock (Gate)
        {
            if (registered || !OperatingSystem.IsLinux()) return;
            AssemblyLoadContext.Default.ResolvingUnmanagedDll += Resolve;
            registered = true;
            PreloadLibTorch();
            // libtorch is loaded now (the CPU build; a CUDA one is switched by TorchRuntime.Initialise once loaded)
            NnpackSwitch.TurnOff();
        }
    }

    /// <summary>
    /// A host without TorchSharp's dependency list (F# Interactive, a notebook) asks the system loader for
    /// <c>libtorch_cpu.so</c> by name, and the system answers with any libtorch registered in ld.so's cache: Debian's
    /// <c>python3-torch</c> installs libtorch 1.13 there, which TorchSharp's glue cannot bind to ("undefined symbol").
    /// Loading the libtorch shipped with TorchSharp by path first makes every later load by name find that one (the
    /// loader matches an already loaded library's soname before it searches). Skipped where a CUDA libtorch is
    /// configured (<see cref="TorchRuntime.LibTorchVariable"/>, loaded by <see cref="TorchRuntime.Initialise"/>) and where
    /// a libtorch is loaded already.
    /// </summary>
    static void PreloadLibTorch()
    {
        if (TorchRuntime.ExternalLibTorch is not null) return;
        try
        {
            var folder = LibTorchFolder();
            foreach (var library in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
            {
                var path = Path.Combine(folder, library);
                if (File.Exists(path)) NativeLibrary.Load(path);
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DllNotFoundException or BadImageFormatException)
        {
            // TorchSharp's own search (and the fallback below) still run, and say what is missing if it is.
        }
    }

    static IntPtr Resolve(System.Reflection.Assembly assembly, string name)
    {
        if (assembly != typeof(torch).Assembly || (name != Glue && name != "torch_cpu")) return IntPtr.Zero;
        lock (Gate)
        {
            try
            {
                // TorchSharp looks for its natives beside its assembly; a script or a program whose natives sit elsewhere
                // (runtimes/linux-x64/native, a NuGet package) gets them from there. The glue needs libtorch.so,
                // libtorch_cpu.so and libc10.so by name: they are loaded first, by path.
                var libtorch = LibTorchFolder();
                foreach (var library in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
                {
                    var path = Path.Combine(libtorch, library);
                    if (File.Exists(path)) NativeLibrary.Load(path);
                }
                if (name == "torch_cpu") return NativeLibrary.Load(Path.Combine(libtorch, "libtorch_cpu.so"));
                if (loaded != IntPtr.Zero) return loaded;
                // The glue as found may load as it is (a build output's patched copy, a new enough libstdc++); else a
                // patched copy is made.
                var glue = Unpatched();
                if (!NativeLibrary.TryLoad(glue, out loaded)) loaded = NativeLibrary.Load(PatchedCopy(glue));
                Failure = null;
            }
            catch (Exception e)
            {
                Failure = e.Message;
                Console.Error.WriteLine($"error: TorchSharp's native library does not load on this system and could not be patched: {e.Message}");
            }
            return name == Glue ? loaded : IntPtr.Zero;
        }
    }

    static string TorchSharpFolder => Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? "";

    static string NuGetPackages =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>The folder of libtorch_cpu.so: where it is loaded from already, else beside TorchSharp, else the NuGet package's.</summary>
    static string LibTorchFolder()
    {
        var loadedFrom = File.ReadLines("/proc/self/maps")
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "")
            .Where(path => path.EndsWith("/libtorch_cpu.so", StringComparison.Ordinal))
            .Select(Path.GetDirectoryName)
            .FirstOrDefault();
        if (loadedFrom is not null) return loadedFrom;
        var packages = Path.Combine(NuGetPackages, "libtorch-cpu-linux-x64");
        var candidates = new[] { Path.Combine(TorchSharpFolder, "runtimes", "linux-x64", "native"), TorchSharpFolder }
            .Concat(Directory.Exists(packages)
                ? Directory.GetDirectories(packages).OrderDescending().Select(v => Path.Combine(v, "runtimes", "linux-x64", "native"))
                : [])
            .ToList();
        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "libtorch_cpu.so")))
               ?? throw new FileNotFoundException($"libtorch_cpu.so was found in none of: {string.Join(", ", candidates)}");
    }

    /// <summary>The glue TorchSharp ships, beside its assembly or in the NuGet cache.</summary>
    static string Unpatched()
    {
        var version = typeof(torch).Assembly.GetName().Version;
        var candidates = new[]
        {
            Path.Combine(TorchSharpFolder, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
            Path.Combine(TorchSharpFolder, "libLibTorchSharp.so"),
            Path.Combine(NuGetPackages, "torchsharp", $"{version?.Major}.{version?.Minor}.{version?.Build}", "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
        };
        return candidates.FirstOrDefault(File.Exists)
               ?? throw new FileNotFoundException($"libLibTorchSharp.so was found in none of: {string.Join(", ", candidates)}");
    }

    /// <summary>A patched copy of the glue, made once per version of it and reused by every later process.</summary>
    static string PatchedCopy(string original)
    {
        string digest;
        using (var stream = File.OpenRead(original))
            digest = Convert.ToHexStringLower(SHA256.HashData(stream))[..16];
        var cacheHome = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x
            ? x : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        var folder = Path.Combine(cacheHome, "attribution", "natives", digest);
        var target = Path.Combine(folder, "libLibTorchSharp.so");
        if (File.Exists(target) && File.Exists(Path.Combine(folder, "libstdcxx_compat.so"))) return target;

        var script = Path.Combine(Path.GetDirectoryName(typeof(NativeFallback).Assembly.Location) ?? "", "native-patch", "patch-libtorchsharp.sh");
        if (!File.Exists(script)) throw new FileNotFoundException($"the patch script is not beside the library ({script})");
        // Patched in a folder of its own, then renamed into place: two processes never see half a patch.
        var staging = $"{folder}.{Environment.ProcessId}.{Guid.NewGuid():N}";
        Directory.CreateDirectory(staging);
        try
        {
            File.Copy(original, Path.Combine(staging, "libLibTorchSharp.so"));
            Run("bash", script, staging, Path.Combine(staging, "work"));
            if (!File.Exists(Path.Combine(staging, "libstdcxx_compat.so")))
                throw new InvalidOperationException("the patch script left no libstdcxx_compat.so; is the system libstdc++ new enough already?");
            Directory.CreateDirectory(Path.GetDirectoryName(folder)!);
            try { Directory.Move(staging, folder); }
            catch (IOException) when (File.Exists(target)) { }   // another process was first
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
        return target;
    }

    static void Run(string program, params string[] arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{program} did not start");
        var error = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{string.Join(' ', arguments)} failed (exit {process.ExitCode}): {error.Result.Trim()}");
    }
}
