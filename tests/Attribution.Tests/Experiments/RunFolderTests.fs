/// Run folders: a run replaces only a folder the toolkit wrote (its marker, nothing else in it), and leftovers of
/// killed runs are cleaned up without touching anything else.
module RunFolderTests

open System
open System.IO
open Expecto
open Experiments

/// Publishes a run folder holding one file `report.md` with `text`.
let private publish (output: string) (name: string) (text: string) =
    RunFolder.publish output name (fun staging -> File.WriteAllText(Path.Combine(staging, "report.md"), text))

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

        test "the toolkit's own run folder is replaced whole by the next run of the same name" {
            let output = TestFiles.freshDir "runs"
            let first = publish output "q" "first"
            Expect.isTrue (File.Exists(Path.Combine(first, RunFolder.MarkerName))) "marked"
            let second = publish output "q" "second"
            Expect.equal second first "same folder"
            Expect.equal (File.ReadAllText(Path.Combine(second, "report.md"))) "second" "replaced"
            Expect.equal (Directory.GetDirectories output |> Array.map Path.GetFileName) [| "q" |] "no staging or previous folder left"
        }

        test "a file a user put into a run folder stops the next run, and is kept" {
            let output = TestFiles.freshDir "runs"
            let folder = publish output "q" "first"
            File.WriteAllText(Path.Combine(folder, "notes.txt"), "mine")
            let _, message = refused (fun () -> publish output "q" "second")
            Expect.stringContains message "notes.txt" "names the file"
            Expect.equal (File.ReadAllText(Path.Combine(folder, "notes.txt"))) "mine" "kept"
            Expect.equal (File.ReadAllText(Path.Combine(folder, "report.md"))) "first" "the old report is untouched too"
            File.Delete(Path.Combine(folder, "notes.txt"))
            publish output "q" "second" |> ignore
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
            RunFolder.cleanLeftovers output "q"
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
