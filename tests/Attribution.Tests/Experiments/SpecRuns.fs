/// Running spec texts in tests: each run in a fresh folder with its own cache, its stderr captured.
module SpecRuns

open System
open System.IO
open Experiments

/// Runs `yaml` with the CLI from a fresh folder (its own cache): the exit code, what the run wrote to stderr, and the
/// folder the run folders land in (a spec named N writes runs/N).
let run (name: string) (yaml: string) =
    let root = TestFiles.freshDir name
    let file = Path.Combine(root, "spec.yaml")
    File.WriteAllText(file, yaml)
    Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", Path.Combine(root, "cache"))
    let writer = new StringWriter()
    let original = Console.Error
    Console.SetError writer
    try
        let code = Cli.run [| "run"; file; "--output"; Path.Combine(root, "runs") |]
        code, writer.ToString(), Path.Combine(root, "runs")
    finally
        Console.SetError original
        Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)

/// The located errors of a spec text, as (path, message).
let errorsOf (yaml: string) =
    match Validate.text "spec.yaml" yaml with
    | Ok _ -> []
    | Error errors -> errors |> List.map (fun e -> e.Path, e.Message)
