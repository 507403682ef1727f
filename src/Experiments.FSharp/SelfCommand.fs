/// The command that starts this program again (Slurm's jobs, the benchmark's fresh processes): its apphost, or the
/// dotnet host with the program's assembly.
module Experiments.SelfCommand

open System
open System.IO
open System.Reflection

/// The executable and the arguments before the program's own.
let parts () : string * string list =
    match Environment.ProcessPath with
    | null -> failwith "the path of this program is unknown"
    | path when Path.GetFileNameWithoutExtension path = "dotnet" ->
        match Assembly.GetEntryAssembly() with
        | null -> failwith "the entry assembly of this program is unknown"
        | entry -> path, [ entry.Location ]
    | path -> path, []
