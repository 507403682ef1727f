/// Run folders: every run keeps a folder of its own (`{output}/{name}/{run id}`), `{output}/{name}/latest` links to the
/// latest, a run never touches a folder or link the toolkit did not make, earlier versions' layouts are taken over
/// with every run kept, and leftovers of killed runs are cleaned up without touching anything else.
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
            Expect.equal (Directory.GetFileSystemEntries(Path.Combine(output, "quickstart"))) [| mine |] "nothing written there"
            Expect.equal (Directory.GetFileSystemEntries output) [| Path.Combine(output, "quickstart") |] "nothing written beside it"
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

        test "each run keeps a folder of its own, {output}/{name}/{run id}, never replaced; {output}/{name}/latest links to the latest" {
            let output = TestFiles.freshDir "runs"
            let first = publish output "q" "first"
            Expect.isTrue (File.Exists(Path.Combine(first, RunFolder.MarkerName))) "marked"
            Expect.equal (Path.GetDirectoryName first) (Path.Combine(output, "q")) "under {output}/{name}"
            let second = publish output "q" "second"
            Expect.notEqual second first "a folder of its own"
            let latest = RunFolder.latest output "q"
            Expect.equal (File.ReadAllText(Path.Combine(latest, "report.md"))) "second" "latest shows the latest run"
            Expect.equal (File.ReadAllText(Path.Combine(first, "report.md"))) "first" "the first run's folder is kept as it was"
            Expect.equal (Directory.ResolveLinkTarget(latest, true) |> nonNull |> _.FullName) second "latest names the second run"
            Expect.isFalse (Path.IsPathRooted((FileInfo latest).LinkTarget |> nonNull)) "relative, so that the output folder can move"
            let runs = Directory.GetDirectories(RunFolder.target output "q") |> Array.filter (fun d -> (FileInfo d).LinkTarget = null)
                       |> Array.map (fun d -> Path.GetFileName d |> nonNull) |> Array.sort
            Expect.equal runs.Length 2 "two runs, no staging folder left"
            Expect.isTrue (runs |> Array.forall (fun r -> Text.RegularExpressions.Regex.IsMatch(r, @"^\d{8}-\d{6}-[0-9a-f]{6}$"))) $"run ids: {runs}"
            Expect.equal (Directory.GetFileSystemEntries output |> Array.map (fun d -> Path.GetFileName d |> nonNull)) [| "q" |] "nothing beside the folder of runs"
        }

        test "a file a user put into a run folder, or beside the runs, is kept, and the next run writes a folder of its own" {
            let output = TestFiles.freshDir "runs"
            let folder = publish output "q" "first"
            File.WriteAllText(Path.Combine(folder, "notes.txt"), "mine")
            File.WriteAllText(Path.Combine(output, "q", "sweep-notes.txt"), "also mine")
            let next = publish output "q" "second"
            Expect.equal (File.ReadAllText(Path.Combine(folder, "notes.txt"))) "mine" "kept"
            Expect.equal (File.ReadAllText(Path.Combine(folder, "report.md"))) "first" "the old report is untouched too"
            Expect.equal (File.ReadAllText(Path.Combine(output, "q", "sweep-notes.txt"))) "also mine" "kept beside the runs"
            Expect.equal (File.ReadAllText(Path.Combine(next, "report.md"))) "second" "the new run has its own folder"
        }

        test "a run folder of the first version (replaced by each run) is kept whole as a run; a link the toolkit did not make is refused" {
            let output = TestFiles.freshDir "runs"
            let old = Path.Combine(output, "q")
            Directory.CreateDirectory old |> ignore
            File.WriteAllText(Path.Combine(old, "report.md"), "old")
            File.WriteAllText(Path.Combine(old, RunFolder.MarkerName), """{ "Tool": "attribution", "Name": "q", "Files": [ "report.md" ] }""")
            File.WriteAllText(Path.Combine(old, "notes.txt"), "mine")
            let next = publish output "q" "new"
            let kept = Directory.GetDirectories(RunFolder.target output "q") |> Array.filter (fun d -> (Path.GetFileName d |> nonNull).StartsWith "before-run-ids")
            Expect.equal kept.Length 1 "the old run kept"
            Expect.equal (File.ReadAllText(Path.Combine(kept.[0], "notes.txt"))) "mine" "with the user's file"
            Expect.equal (File.ReadAllText(Path.Combine(kept.[0], "report.md"))) "old" "and its report"
            Expect.equal (File.ReadAllText(Path.Combine(next, "report.md"))) "new" "the new run beside it"
            Expect.equal (Directory.GetFileSystemEntries output |> Array.map (fun d -> Path.GetFileName d |> nonNull)) [| "q" |] "nothing left beside"
            let elsewhere = TestFiles.freshDir "elsewhere"
            File.CreateSymbolicLink(Path.Combine(output, "r"), elsewhere) |> ignore
            Expect.stringContains (RunFolder.problem output "r" |> Option.defaultValue "") "a link the toolkit did not make" "a user's link"
        }

        test "the previous version's layout ({output}/{name} a link into {output}/.runs/{name}) is taken over: every run moved in" {
            let output = TestFiles.freshDir "runs"
            let earlier = Path.Combine(output, ".runs", "q")
            let earlierRun (id: string) (text: string) =
                let dir = Path.Combine(earlier, id)
                Directory.CreateDirectory dir |> ignore
                File.WriteAllText(Path.Combine(dir, "report.md"), text)
                File.WriteAllText(Path.Combine(dir, RunFolder.MarkerName), """{ "Tool": "attribution", "Name": "q", "Files": [ "report.md" ] }""")
            earlierRun "20261201-100000-aaaaaa" "one"
            earlierRun "20261202-100000-bbbbbb" "two"
            File.CreateSymbolicLink(Path.Combine(output, "q"), Path.Combine(".runs", "q", "20261202-100000-bbbbbb")) |> ignore
            // a neighbouring spec's history is not this run's to move
            Directory.CreateDirectory(Path.Combine(output, ".runs", "other", "20261201-100000-cccccc")) |> ignore
            Expect.isNone (RunFolder.problem output "q") "the previous layout is the toolkit's own"
            let next = publish output "q" "three"
            let read (id: string) = File.ReadAllText(Path.Combine(output, "q", id, "report.md"))
            Expect.equal (read "20261201-100000-aaaaaa", read "20261202-100000-bbbbbb") ("one", "two") "the earlier runs, moved in"
            Expect.equal (File.ReadAllText(Path.Combine(RunFolder.latest output "q", "report.md"))) "three" "latest is the new run"
            Expect.equal (Path.GetDirectoryName next) (Path.Combine(output, "q")) "the new run beside them"
            Expect.isFalse (Directory.Exists earlier) "the earlier history is emptied and removed"
            Expect.isTrue (Directory.Exists(Path.Combine(output, ".runs", "other", "20261201-100000-cccccc"))) "another spec's is kept"
        }

        test "two runs taking the previous layout over at once both finish, and every run is kept" {
            let output = TestFiles.freshDir "runs"
            let earlier = Path.Combine(output, ".runs", "q")
            let ids = [ for i in 0 .. 199 -> $"20261201-{i:D6}-aaaaaa" ]
            for id in ids do
                let dir = Path.Combine(earlier, id)
                Directory.CreateDirectory dir |> ignore
                File.WriteAllText(Path.Combine(dir, "report.md"), id)
            File.CreateSymbolicLink(Path.Combine(output, "q"), Path.Combine(".runs", "q", List.last ids)) |> ignore
            let both = [| for text in [ "a"; "b" ] -> Threading.Tasks.Task.Run(fun () -> publish output "q" text) |]
            Threading.Tasks.Task.WaitAll(both |> Array.map (fun t -> t :> Threading.Tasks.Task))
            for id in ids do Expect.equal (File.ReadAllText(Path.Combine(output, "q", id, "report.md"))) id $"{id} kept"
            Expect.equal (both |> Array.map (fun t -> File.ReadAllText(Path.Combine(t.Result, "report.md"))) |> Array.sort) [| "a"; "b" |] "both new runs"
            Expect.isFalse (Directory.Exists(Path.Combine(output, ".runs"))) "the earlier history is gone"
        }

        test "a folder of another spec's runs is refused" {
            let output = TestFiles.freshDir "runs"
            publish output "q" "first" |> ignore
            Directory.Move(Path.Combine(output, "q"), Path.Combine(output, "p"))
            Expect.stringContains (RunFolder.problem output "p" |> Option.defaultValue "") "holds the runs of another spec ('q')" "another spec"
            Expect.isNone (RunFolder.problem output "q") "free again"
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
            // staging folders of this version live in the folder of the spec's runs, the previous version's in .runs/q
            publish output "q" "first" |> ignore
            let history = RunFolder.target output "q"
            let earlierStaged = Path.Combine(output, ".runs", "q", $"20261202-100000-abcdef.partial-2147483646-0123abcd")
            Directory.CreateDirectory earlierStaged |> ignore
            File.WriteAllText(Path.Combine(earlierStaged, RunFolder.MarkerName), """{ "Tool": "attribution", "Name": "q", "Files": [] }""")
            let staged (pid: int) =
                let dir = Path.Combine(history, $"20261203-100000-abcdef.partial-{pid}-0123abcd")
                Directory.CreateDirectory dir |> ignore
                File.WriteAllText(Path.Combine(dir, RunFolder.MarkerName), """{ "Tool": "attribution", "Name": "q", "Files": [] }""")
                dir
            let deadStaged, liveStaged = staged 2147483646, staged Environment.ProcessId
            // a link beside `latest` and a folder of runs beside its place, left by killed processes; a live one's link kept
            let strayLink (pid: int) =
                let link = Path.Combine(history, $"latest.link-{pid}-{String('a', 32)}")
                File.CreateSymbolicLink(link, "20261203-100000-abcdef") |> ignore
                link
            let deadLink, liveLink = strayLink 2147483646, strayLink Environment.ProcessId
            let made = Path.Combine(output, "q.new-2147483646-0123abcd")
            Directory.CreateDirectory made |> ignore
            File.WriteAllText(Path.Combine(made, RunFolder.RunsMarkerName), """{ "Tool": "attribution", "Name": "q" }""")
            RunFolder.cleanLeftovers output "q"
            Expect.isFalse (File.Exists deadLink || Directory.Exists deadLink || (FileInfo deadLink).LinkTarget <> null) "a dead process's link is removed"
            Expect.isNotNull (FileInfo liveLink).LinkTarget "a live process's link is kept"
            Expect.isFalse (Directory.Exists made) "a dead process's folder of runs, its marker alone, is removed"
            Expect.isFalse (Directory.Exists deadStaged) "a dead process's staging folder among the runs is removed"
            Expect.isFalse (Directory.Exists earlierStaged) "and one of the previous version's"
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
