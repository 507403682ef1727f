/// Specs written to break the front end: each is refused with one located error (never a crash, a hang or a stack
/// trace), and the command line refuses bad overrides with its documented exit codes.
module HostileSpecTests

open System
open System.IO
open System.Threading.Tasks
open Expecto
open Experiments

let private hostileDir = Path.Combine(AppContext.BaseDirectory, "Specs", "hostile")

/// The errors of a spec file, as `validate` reads it (every document of it).
let private errorsOf (path: string) =
    match Yaml.readFile path with
    | Error errors -> errors
    | Ok text -> SpecFiles.documents text |> List.collect (fun doc -> match Validate.document path doc with Ok _ -> [] | Error e -> e)

/// Runs `f` with stderr captured; fails the test (instead of hanging the suite) if it takes over 60 s.
let private captured (f: unit -> 'a) : 'a * string =
    let writer = new StringWriter()
    let original = Console.Error
    Console.SetError writer
    try
        let task = Task.Run(fun () -> f ())
        if not (task.Wait(TimeSpan.FromSeconds 60.0)) then failtest "did not finish within 60 s"
        task.Result, writer.ToString()
    finally
        Console.SetError original

let private cli (args: string list) = captured (fun () -> Cli.run (Array.ofList args))

/// A file of the given text in a fresh folder.
let private specFile (name: string) (text: string) =
    let path = Path.Combine(TestFiles.freshDir "hostile", name)
    File.WriteAllText(path, text)
    path

let private valid = "name: h\ndata: { dataset: fashion_mnist, explain: 5, train_limit: 200 }\nmodel: { architecture: fashion_cnn, epochs: 1 }\nmethods:\n  - method: saliency\n"

[<Tests>]
let tests =
    testSequenced <| testList "hostile specs" [
        test "each file of the hostile corpus gets one error at the field and position its first line states" {
            let files = Directory.GetFiles(hostileDir, "*.yaml")
            Expect.isGreaterThanOrEqual files.Length 15 "the corpus is there"
            for file in files do
                // "# expect: PATH LINE:COLUMN", PATH "-" for an error of the whole file
                let expect = (File.ReadLines file |> Seq.head).Substring("# expect: ".Length).Split ' '
                let path = if expect.[0] = "-" then "" else expect.[0]
                let line, column = let lc = expect.[1].Split ':' in int lc.[0], int lc.[1]
                match errorsOf file with
                | [ e ] ->
                    Expect.equal (e.Path, e.Line, e.Column) (path, line, column) $"{Path.GetFileName file}: {SpecError.format e}"
                | errors -> failtest $"{Path.GetFileName file}: expected one error, got {errors.Length}:\n{SpecError.formatAll errors}"
        }

        test "every file of the corpus makes `validate` exit 1 with its located message and no stack trace" {
            for file in Directory.GetFiles(hostileDir, "*.yaml") do
                let code, stderr = cli [ "validate"; file ]
                Expect.equal code ExitCode.BadSpec $"{file}: exit code"
                Expect.stringContains stderr (Path.GetFileName file |> nonNull) "the message names the file"
                Expect.isFalse (stderr.Contains "   at ") $"{file}: no stack trace:\n{stderr}"
        }

        test "nesting, alias expansion, recursive aliases, key counts and file size are bounded, each a located error" {
            let cases =
                [ "deep", "a: " + String.replicate 10_000 "[" + String.replicate 10_000 "]" + "\n", "nested too deeply"
                  "laughs",
                  (let level i = $"l{i}: &l{i} [" + String.Join(", ", Array.create 9 $"*l{i - 1}") + "]"
                   "l0: &l0 [x, x, x, x, x, x, x, x, x]\n" + String.Join("\n", [ for i in 1..9 -> level i ]) + "\n"),
                  "too large"
                  "recursive", "a: &x [1, *x]\n", "recursive alias"
                  "keys", String.Join("\n", [ for i in 1..6000 -> $"k{i}: 1" ]) + "\n", "more than 5000 keys"
                  "huge", "name: " + String('a', 5_000_000) + "\n", "a spec is at most" ]
            for name, text, needle in cases do
                let file = specFile $"{name}.yaml" text
                let errors, _ = captured (fun () -> errorsOf file)
                match errors with
                | [ e ] ->
                    Expect.stringContains (SpecError.format e) needle name
                    Expect.isGreaterThanOrEqual e.Line (if name = "huge" then 0 else 1) $"{name} is located"
                | other -> failtest $"{name}: expected one error, got {SpecError.formatAll other}"
        }

        test "two documents of one file with the same name are refused, located at the second's name" {
            let doc = "name: twin\ndata: { dataset: fashion_mnist }\nmodel: { architecture: fashion_cnn }\nmethods: [ { method: saliency } ]\n"
            let file = specFile "twins.yaml" (doc + "---\n" + doc)
            let code, stderr = cli [ "validate"; file ]
            Expect.equal code ExitCode.BadSpec "exit code"
            Expect.stringContains stderr "twins.yaml:6:7: name: another document of this file has the same name (line 1)" stderr
        }

        test "command-line overrides follow the rules of the fields they replace; unknown flags are errors" {
            let file = specFile "h.yaml" valid
            let existing = specFile "a-file" "x"
            for args, needle in
                [ [ "run"; file; "--explain"; "0" ], "--explain 0: must be between 1 and 10000000"
                  [ "run"; file; "--explain"; "-1" ], "--explain -1"
                  [ "run"; file; "--output"; existing ], "is a file"
                  [ "run"; file; "--explian"; "3" ], "unknown option '--explian'"
                  [ file; "--nope" ], "unknown option '--nope'"
                  [ "bench"; "--samples"; "1" ], "--samples 1: must be between 2" ] do
                let code, stderr = cli args
                Expect.equal code ExitCode.BadSpec $"{args}: exit code ({stderr})"
                Expect.stringContains stderr needle $"{args}"
                Expect.isFalse (stderr.Contains "   at ") "no stack trace"
        }

        test "a cache folder that is a file is exit code 3, before any work" {
            let file = specFile "h.yaml" valid
            let notAFolder = specFile "cache" "x"
            let output = TestFiles.freshDir "hostile-output"
            Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", notAFolder)
            try
                let code, stderr = cli [ "run"; file; "--output"; output ]
                Expect.equal code ExitCode.BadCache stderr
                Expect.stringContains stderr "is a file" stderr
            finally
                Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)
        }
    ]
