/// How a command ends: every error the user can cause as one message and its exit code (README, "Exit codes"),
/// anything else as a bug with its stack trace; and the checks every command that runs specs makes before any work.
module Experiments.CliOutcome

open System
open System.IO
open Experiments
open Experiments.SpecFiles

/// Stack traces of user errors are printed with --verbose only.
let mutable verbose = false

/// Runs `action`; an error the user can cause prints one message and returns its exit code (README, "Exit codes"),
/// anything else is a bug: its stack trace and a request to report it, exit 70. `doc` locates spec problems.
let guarded (doc: Loaded option) (action: unit -> unit) =
    let say (code: int) (message: string) (e: exn) =
        eprintfn "error: %s" message
        if verbose then eprintfn "%O" e
        code
    try
        action ()
        ExitCode.Ok
    with
    | SpecProblem(path, message) as e ->
        let located =
            match doc with
            | Some d when path <> "" -> Validate.located d.Source d.Node [ SpecError.make SpecError.FSharpFile 0 0 path message None [] ] |> List.head |> SpecError.format
            | _ when path <> "" -> $"{path}: {message}"
            | _ -> message
        say ExitCode.BadSpec located e
    | InputProblem message as e -> say ExitCode.BadInput message e
    | :? Attribution.Data.DataNotFoundException as e -> say ExitCode.BadInput e.Message e
    | :? FileNotFoundException as e -> say ExitCode.BadInput e.Message e
    | :? InvalidDataException as e -> say ExitCode.BadInput e.Message e   // a data file that is not what it should be
    | :? InvalidOperationException as e when e.Message.Contains Attribution.Runtime.TorchRuntime.LibTorchVariable -> say ExitCode.BadInput e.Message e
    | CacheProblem message as e -> say ExitCode.BadCache message e
    | DiskFull.DiskFull io as e ->
        say ExitCode.BadCache ($"no space left on the device ({io.Message}): free space, or point ATTRIBUTION_CACHE and --output at a larger disk; "
                               + "every step and call stored so far is kept, so the run resumes from there") e
    | :? OutOfMemoryException as e -> say ExitCode.BadInput "out of memory: the spec asks for more than this machine has (lower explain.batch_size, samples or explain)" e

/// Each spec's run folder must be free or the toolkit's own, and two specs of one command must not share one:
/// checked for all of them before any work starts.
let runFolderErrors (docs: Loaded list) =
    let targets = docs |> List.map (fun d -> d, RunFolder.target d.Spec.Output d.Spec.Name)
    [ for i, (d, folder) in List.indexed targets do
        match targets |> List.take i |> List.tryFind (fun (_, f) -> f = folder) with
        | Some(first, _) -> yield $"{d.Source}: spec '{d.Spec.Name}' writes {folder}, as spec '{first.Spec.Name}' of {first.Source} does; give one another name or output"
        | None ->
            match RunFolder.problem d.Spec.Output d.Spec.Name with
            | Some message -> yield $"{d.Source}: spec '{d.Spec.Name}': {message}"
            | None -> () ]

let report (errors: string list) =
    for e in errors do eprintfn "%s" e
    ExitCode.BadSpec

/// Spec paths that look like options: an unknown flag, not a file.
let unknownFlags (paths: string list) =
    paths |> List.filter (fun p -> p.StartsWith "-") |> List.map (fun p -> $"unknown option '{p}' (see --help)")

let withSpecs (paths: string list) (only: string list) (action: Loaded -> unit) =
    match unknownFlags paths with
    | [] ->
        match load paths |> Result.bind (fun docs -> selectSpecs only docs |> Result.mapError List.singleton) with
        | Error errors -> report errors
        | Ok docs -> docs |> List.fold (fun code d -> if code <> ExitCode.Ok then code else guarded (Some d) (fun () -> action d)) ExitCode.Ok
    | errors -> report errors

