/// What tests that start processes share: the repository root, the CLI as a child process, and running a command to
/// its end.
module TestProcesses

open System
open System.Diagnostics
open System.IO

/// The repository root (where Mixed.sln is), found from the test binary's folder.
let repoRoot =
    let rec up (dir: DirectoryInfo) =
        if File.Exists(Path.Combine(dir.FullName, "Mixed.sln")) then dir.FullName
        else up (match dir.Parent with null -> failwith "Mixed.sln not found above the test binary" | p -> p)
    up (DirectoryInfo AppContext.BaseDirectory)

/// The CLI's assembly beside the test binary (run as `dotnet exec cli`).
let cli = Path.Combine(AppContext.BaseDirectory, "attribution.dll")

/// The dotnet host running these tests (the one on PATH when it cannot be found).
let dotnetHost =
    let runtime = Path.GetDirectoryName(typeof<obj>.Assembly.Location) |> Option.ofObj |> Option.defaultValue ""
    let host = Path.GetFullPath(Path.Combine(runtime, "..", "..", "..", "dotnet"))
    if File.Exists host then host else "dotnet"

/// Runs a command in `folder` with extra environment variables to its end (at most 5 minutes): exit code, stdout, stderr.
let run (folder: string) (environment: (string * string) list) (program: string) (arguments: string list) =
    let info = ProcessStartInfo(program, WorkingDirectory = folder, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true)
    for a in arguments do info.ArgumentList.Add a
    for k, v in environment do info.Environment.[k] <- v
    use p = match Process.Start info with null -> failwith $"{program} did not start" | p -> p
    let error = p.StandardError.ReadToEndAsync()
    let output = p.StandardOutput.ReadToEnd()
    if not (p.WaitForExit(TimeSpan.FromMinutes 5.0)) then
        p.Kill()
        failwith $"{program} ran past 5 minutes"
    p.ExitCode, output, error.Result

/// The CPU device of in-process runs.
let cpu () = Attribution.Runtime.TorchRuntime.Resolve(Attribution.Runtime.DeviceRequest.Cpu)

/// Runs `action` with ATTRIBUTION_CACHE pointing at `cache` (tests run sequenced: the variable is process-wide).
let withCache (cache: string) (action: unit -> 'a) =
    Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", cache)
    try action () finally Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)

/// A spec's plan, with its data hash.
let planOf (spec: Experiments.Spec) = Experiments.Plan.compile spec (Experiments.Execute.dataHash spec)
