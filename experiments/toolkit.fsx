// Loads the toolkit into F# Interactive from its Release build. That build's copy of TorchSharp's native glue carries
// the Debian 12 patch (README, Runtime), so scripts load it from there rather than from the NuGet cache.
// Build once, from the repository root:   dotnet build src/Experiments.FSharp -c Release
// Then, from any folder:                  dotnet fsi experiments/quickstart.fsx
#r "../src/Experiments.FSharp/bin/Release/net10.0/TorchSharp.dll"
#r "../src/Experiments.FSharp/bin/Release/net10.0/Attribution.CSharp.dll"
#r "../src/Experiments.FSharp/bin/Release/net10.0/attribution.dll"

open System
open System.IO
open System.Runtime.InteropServices

/// The build's native libraries (libtorch, TorchSharp's patched glue, SkiaSharp for the pictures). F# Interactive looks
/// for them relative to the working folder, not to the build, so they are offered from here when a load by name fails.
let private natives = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "../src/Experiments.FSharp/bin/Release/net10.0/runtimes/linux-x64/native"))

System.Runtime.Loader.AssemblyLoadContext.Default.add_ResolvingUnmanagedDll(fun _ name ->
    [ name; $"lib{name}.so"; $"{name}.so" ]
    |> List.map (fun file -> Path.Combine(natives, file))
    |> List.tryFind File.Exists
    |> Option.map NativeLibrary.Load
    |> Option.defaultValue IntPtr.Zero)

// TorchSharp's libtorch by path, before a load by name could find another one on the system (Debian's python3-torch
// registers libtorch 1.13 with the loader): NativeFallback's documentation says why.
Attribution.Runtime.NativeFallback.Register()

/// ATTRIBUTION_PLAN_ONLY=1 makes a script print its plans instead of running them (the test suite checks the shipped
/// scripts this way).
let planOnly = Environment.GetEnvironmentVariable "ATTRIBUTION_PLAN_ONLY" = "1"
