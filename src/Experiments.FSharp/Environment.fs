/// The record of where and how a run ran (commit, dirty flag, versions, device), kept with its results.
module Experiments.RunEnvironment

open System
open System.Diagnostics

type EnvironmentRecord =
    { Commit: string
      Dirty: bool
      StartedUtc: string
      DotNet: string
      TorchSharp: string
      Runtime: string
      Device: string
      Os: string
      ProcessorCount: int
      CommandLine: string }

let private git (args: string) =
    try
        let info = ProcessStartInfo("git", args, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
        use p =
            match Process.Start info with
            | null -> failwith "git did not start"
            | p -> p
        let output = p.StandardOutput.ReadToEnd()
        p.WaitForExit()
        if p.ExitCode = 0 then Some(output.Trim()) else None
    with _ -> None

let capture (device: TorchSharp.torch.Device) (started: DateTime) =
    { Commit = git "rev-parse HEAD" |> Option.defaultValue "unknown"
      Dirty = git "status --porcelain --untracked-files=no" |> Option.map (fun s -> s <> "") |> Option.defaultValue false
      StartedUtc = started.ToString "yyyy-MM-ddTHH:mm:ssZ"
      DotNet = Environment.Version.ToString()
      TorchSharp = string (typeof<TorchSharp.torch>.Assembly.GetName().Version)
      Runtime = Attribution.Runtime.TorchRuntime.Describe device
      Device = string device
      Os = Runtime.InteropServices.RuntimeInformation.OSDescription
      ProcessorCount = Environment.ProcessorCount
      CommandLine = String.Join(" ", Environment.GetCommandLineArgs()) }
