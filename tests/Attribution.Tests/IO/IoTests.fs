module IoTests

open System
open System.IO
open System.Text
open System.Threading.Tasks
open Expecto
open Attribution.IO
open TestFiles

let private names dir = Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort

[<Tests>]
let tests =
    testList "IO.AtomicFile" [
        test "WriteAllText creates the missing folders and writes exactly the UTF-8 bytes, without BOM" {
            let dir = freshDir "atomic"
            let path = Path.Combine(dir, "a", "b", "out.txt")
            AtomicFile.WriteAllText(path, "héllo\nworld")
            Expect.equal (File.ReadAllBytes path) (UTF8Encoding(false).GetBytes "héllo\nworld") "file bytes"
        }

        test "WriteAllBytes replaces an existing file and leaves no temporary file behind" {
            let dir = freshDir "atomic"
            let path = Path.Combine(dir, "out.bin")
            File.WriteAllText(path, "old content that is longer than the new one")
            AtomicFile.WriteAllBytes(path, [| 1uy; 2uy; 3uy |])
            Expect.equal (File.ReadAllBytes path) [| 1uy; 2uy; 3uy |] "new content, not old tail"
            Expect.equal (names dir) [| "out.bin" |] "only the target remains"
        }

        test "a writer that fails half-way leaves the old content and no temporary file" {
            let dir = freshDir "atomic"
            let path = Path.Combine(dir, "out.txt")
            File.WriteAllText(path, "old")
            let crash () =
                AtomicFile.Write(path, fun s ->
                    s.Write([| 65uy; 66uy |], 0, 2)
                    raise (InvalidOperationException "simulated crash"))
            Expect.throwsT<InvalidOperationException> crash "the writer's exception propagates"
            Expect.equal (File.ReadAllText path) "old" "old content intact"
            Expect.equal (names dir) [| "out.txt" |] "temporary file removed"
        }

        test "a writer that fails before any target exists leaves no file at all" {
            let dir = freshDir "atomic"
            let path = Path.Combine(dir, "never.txt")
            Expect.throwsT<IOException> (fun () -> AtomicFile.Write(path, fun s -> s.WriteByte 1uy; raise (IOException "disk full"))) "propagates"
            Expect.isFalse (File.Exists path) "no half-written target"
            Expect.isEmpty (names dir) "no temporary file"
        }

        test "a folder as the target is rejected with a message naming it" {
            let dir = freshDir "atomic"
            let e = Expect.throwsC (fun () -> AtomicFile.WriteAllText(dir, "x")) id
            Expect.stringContains e.Message dir "names the folder"
        }

        test "concurrent writers of one target leave exactly one complete version" {
            let dir = freshDir "atomic"
            let path = Path.Combine(dir, "shared.bin")
            let versions = Array.init 8 (fun i -> Array.create 200_000 (byte (i + 1)))
            Parallel.For(0, versions.Length, fun i -> AtomicFile.WriteAllBytes(path, versions[i])) |> ignore
            let final = File.ReadAllBytes path
            Expect.isTrue (versions |> Array.exists (fun v -> v = final)) "the file equals one whole version"
            Expect.equal (names dir) [| "shared.bin" |] "no temporary files"
        }
    ]

[<Tests>]
let corruptFiles =
    testList "IO.CorruptFiles" [
        test "MoveAside renames to <file>.corrupt-<UTC time>, keeps the bytes, and never overwrites an earlier one" {
            let dir = freshDir "aside"
            let path = Path.Combine(dir, "cache.bin")
            File.WriteAllText(path, "first")
            let a = CorruptFiles.MoveAside path
            File.WriteAllText(path, "second")
            let b = CorruptFiles.MoveAside path
            Expect.isFalse (File.Exists path) "moved away"
            Expect.stringStarts (Path.GetFileName a) "cache.bin.corrupt-" "named after the file"
            Expect.isMatch (Path.GetFileName a) @"^cache\.bin\.corrupt-\d{8}T\d{6}Z(-\d+)?$" "with a UTC time stamp"
            Expect.notEqual a b "two names, even within one second"
            Expect.equal (File.ReadAllText a, File.ReadAllText b) ("first", "second") "bytes kept"
        }
    ]
