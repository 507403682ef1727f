/// Run folders: every run keeps a folder of its own (`{output}/.runs/{name}/{run id}`), `{output}/{name}` links to the
/// latest, a run never touches a folder or link the toolkit did not make, and leftovers of killed runs are cleaned up
/// without touching anything else.
module RunFolderTests

open System
open System.IO
open Expecto
open Experiments

/// Publishes a run folder holding one file `report.md` with `text`.
let private publish (output: string) (name: string) (text: string) =
    RunFolder.publish output name (RunFolder.newRunId ()) (fun staging -> File.WriteAllText(Path.Combine(staging, "report.md"), text))

let private refused (action: unit -> 'a) =
    try
        action () |> ignore
        failtest "expected the run folder to be refused"
    with SpecProblem(path, message) -> path, message

[<Tests>]
let tests =
    testList "run folders" [
        test "a folder the toolkit did not write is never replaced, and its files stay" {
            let output = TestFiles.freshDir "runs"
            let mine = Path.Combine(output, "quickstart", "mine.txt")
            Directory.CreateDirectory(Path.GetDirectoryName mine |> nonNull) |> ignore
            File.WriteAllText(mine, "x")
            let _, message = refused (fun () -> publish output "quickstart" "report")
            Expect.stringContains message "was not written by this toolkit" message
            Expect.equal (File.ReadAllText mine) "x" "the user's file is untouched"
            Expect.isFalse (File.Exists(Path.Combine(output, "quickstart", "report.md"))) "nothing written there"
            Expect.isEmpty (Directory.GetDirectories(output) |> Array.filter (fun d -> d.Contains ".partial-")) "no staging folder left"
        }

        test "a spec named like an existing folder of the user's (name: docs, output: .) leaves that folder alone" {
            let output = TestFiles.freshDir "project"
            let docs = Path.Combine(output, "docs")
            Directory.CreateDirectory docs |> ignore
            File.WriteAllText(Path.Combine(docs, "methods.md"), "keep me")
            Expect.isSome (RunFolder.problem output "docs") "refused before any work"
            refused (fun () -> publish output "docs" "report") |> ignore
            Expect.equal (File.ReadAllText(Path.Combine(docs, "methods.md"))) "keep me" "kept"
        }

        test "each run keeps a folder of its own, never replaced; {output}/{name} links to the latest" {
            let output = TestFiles.freshDir "runs"
            let first = publish output "q" "first"
            let firstRun = Directory.ResolveLinkTarget(first, true) |> nonNull |> _.FullName
            Expect.isTrue (File.Exists(Path.Combine(first, RunFolder.MarkerName))) "marked"
            let second = publish output "q" "second"
            Expect.equal second first "the same link"
            Expect.equal (File.ReadAllText(Path.Combine(second, "report.md"))) "second" "the link shows the latest run"
            Expect.equal (File.ReadAllText(Path.Combine(firstRun, "report.md"))) "first" "the first run's folder is kept as it was"
            let runs = Directory.GetDirectories(RunFolder.history output "q") |> Array.map (fun d -> Path.GetFileName d |> nonNull) |> Array.sort
            Expect.equal runs.Length 2 "two runs, no staging folder left"
            Expect.isTrue (runs |> Array.forall (fun r -> Text.RegularExpressions.Regex.IsMatch(r, @"^\d{8}-\d{6}-[0-9a-f]{6}$"))) $"run ids: {runs}"
            Expect.equal (Directory.GetFileSystemEntries output |> Array.map (fun d -> Path.GetFileName d |> nonNull) |> Array.sort) [| ".runs"; "q" |] "only the history and the link"
        }

        test "a file a user put into a run folder is kept, and the next run writes a folder of its own" {
            let output = TestFiles.freshDir "runs"
            let folder = publish output "q" "first" |> fun link -> Directory.ResolveLinkTarget(link, true) |> nonNull |> _.FullName
            File.WriteAllText(Path.Combine(folder, "notes.txt"), "mine")
            let latest = publish output "q" "second"
            Expect.equal (File.ReadAllText(Path.Combine(folder, "notes.txt"))) "mine" "kept"
            Expect.equal (File.ReadAllText(Path.Combine(folder, "report.md"))) "first" "the old report is untouched too"
            Expect.equal (File.ReadAllText(Path.Combine(latest, "report.md"))) "second" "the new run is the latest"
        }

        test "a run folder of a version that replaced run folders is moved into the history whole; a link the toolkit did not make is refused" {
            let output = TestFiles.freshDir "runs"
            let old = Path.Combine(output, "q")
            Directory.CreateDirectory old |> ignore
            File.WriteAllText(Path.Combine(old, "report.md"), "old")
            File.WriteAllText(Path.Combine(old, RunFolder.MarkerName), """{ "Tool": "attribution", "Name": "q", "Files": [ "report.md" ] }""")
            File.WriteAllText(Path.Combine(old, "notes.txt"), "mine")
            publish output "q" "new" |> ignore
            let kept = Directory.GetDirectories(RunFolder.history output "q") |> Array.filter (fun d -> (Path.GetFileName d |> nonNull).StartsWith "before-run-ids")
            Expect.equal kept.Length 1 "the old run kept"
            Expect.equal (File.ReadAllText(Path.Combine(kept.[0], "notes.txt"))) "mine" "with the user's file"
            Expect.equal (File.ReadAllText(Path.Combine(old, "report.md"))) "new" "the name now links to the new run"
            let elsewhere = TestFiles.freshDir "elsewhere"
            File.CreateSymbolicLink(Path.Combine(output, "r"), elsewhere) |> ignore
            Expect.stringContains (RunFolder.problem output "r" |> Option.defaultValue "") "a link the toolkit did not make" "a user's link"
        }

        test "a file where the run folder or the output folder would be is refused" {
            let output = TestFiles.freshDir "runs"
            File.WriteAllText(Path.Combine(output, "q"), "a file")
            Expect.stringContains (RunFolder.problem output "q" |> Option.defaultValue "") "is a file" "run folder"
            Expect.stringContains (RunFolder.problem (Path.Combine(output, "q")) "x" |> Option.defaultValue "") "is a file" "output folder"
        }

        test "staging folders of dead processes are removed; a live process's and unmarked ones are kept" {
            let output = TestFiles.freshDir "runs"
            let make (suffix: string) (marked: bool) =
                let dir = Path.Combine(output, "q." + suffix)
                Directory.CreateDirectory dir |> ignore
                File.WriteAllText(Path.Combine(dir, "report.md"), "partial")
                if marked then File.WriteAllText(Path.Combine(dir, RunFolder.MarkerName), """{ "Tool": "attribution", "Name": "q", "Files": [] }""")
                dir
            let dead = make "partial-2147483646-0123abcd" true
            let deadUnmarked = make "previous-2147483646-89abcdef" false
            let live = make $"partial-{Environment.ProcessId}-fedcba98" true
            // staging folders of this version live in the run history
            let history = RunFolder.history output "q"
            Directory.CreateDirectory history |> ignore
            let staged (pid: int) =
                let dir = Path.Combine(history, $"20261203-100000-abcdef.partial-{pid}-0123abcd")
                Directory.CreateDirectory dir |> ignore
                File.WriteAllText(Path.Combine(dir, RunFolder.MarkerName), """{ "Tool": "attribution", "Name": "q", "Files": [] }""")
                dir
            let deadStaged, liveStaged = staged 2147483646, staged Environment.ProcessId
            RunFolder.cleanLeftovers output "q"
            Expect.isFalse (Directory.Exists deadStaged) "a dead process's staging folder in the history is removed"
            Expect.isTrue (Directory.Exists liveStaged) "a live process's is kept"
            Expect.isFalse (Directory.Exists dead) "a dead process's marked staging folder is removed"
            Expect.isTrue (Directory.Exists deadUnmarked) "an unmarked folder is not the toolkit's: kept"
            Expect.isTrue (Directory.Exists live) "a live process's staging folder is kept"
        }

        test "output: ~/runs is the home folder's runs, not a folder named ~" {
            let home = Environment.GetFolderPath Environment.SpecialFolder.UserProfile
            Expect.equal (RunFolder.target "~/runs" "q") (Path.Combine(home, "runs", "q")) "expanded"
            Expect.equal (RunFolder.target "~" "q") (Path.Combine(home, "q")) "alone"
            Expect.equal (RunFolder.target "a~/runs" "q") (Path.GetFullPath(Path.Combine("a~/runs", "q"))) "only a leading ~"
        }
    ]
