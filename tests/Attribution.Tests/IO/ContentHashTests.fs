/// FileIdentity (statx) and ContentHash (streamed SHA-256 with a memo keyed by the file's identity).
module ContentHashTests

open System
open System.Diagnostics
open System.IO
open System.Text
open System.Text.Json.Nodes
open System.Threading
open Expecto
open Attribution.IO
open TestFiles

let private sha256Hex (text: string) =
    Convert.ToHexStringLower(Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes text))

/// The value, which must not be null.
let private notNull (what: string) (x: 'a | null) : 'a =
    match x with
    | null -> failtest $"{what} is null"
    | v -> v

let private onLinux () =
    if not (OperatingSystem.IsLinux()) then skiptest "FileIdentity reads statx, which only Linux has"

/// `stat -c FORMAT path`, split at spaces.
let private stat (format: string) (path: string) =
    let info = ProcessStartInfo("stat", [| "-c"; format; path |], RedirectStandardOutput = true, UseShellExecute = false)
    use p = Process.Start info |> notNull "the stat process"
    let out = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    Expect.equal p.ExitCode 0 "stat ran"
    out.Trim().Split(' ')

/// Waits until the file's last change lies further back than ContentHash.RecentChange, so that its hash may be memoised.
let private letSettle () = Thread.Sleep(ContentHash.RecentChange + TimeSpan.FromMilliseconds 200.0)

let private identity =
    testList "FileIdentity" [
        test "device, inode, size, mtime and ctime agree with `stat` to the nanosecond" {
            onLinux ()
            let path = Path.Combine(freshDir "ident", "f.txt")
            File.WriteAllText(path, "twelve bytes")
            // 100 ns ticks with a non-zero sub-second part, so that the nanosecond field is checked, not only the seconds.
            File.SetLastWriteTimeUtc(path, DateTime(2021, 3, 4, 5, 6, 7, DateTimeKind.Utc).AddTicks(1234567L))
            let id = FileIdentity.Of path |> notNull "the identity on Linux"
            let fields = stat "%d %i %s %.9Y %.9Z" path
            let ns (s: string) = let parts = s.Split('.') in int64 parts[0] * 1_000_000_000L + int64 parts[1]
            Expect.equal id.Device (uint64 fields[0]) "device (makedev encoding, as %d)"
            Expect.equal id.Inode (uint64 fields[1]) "inode"
            Expect.equal id.Size 12L "size"
            Expect.equal id.Size (int64 fields[2]) "size as stat says"
            Expect.equal id.ModifyTimeNs (ns fields[3]) "mtime in ns"
            Expect.equal id.ModifyTimeNs ((DateTime(2021, 3, 4, 5, 6, 7, DateTimeKind.Utc).AddTicks(1234567L) - DateTime.UnixEpoch).Ticks * 100L) "mtime as set"
            Expect.equal id.ChangeTimeNs (ns fields[4]) "ctime in ns"
        }

        test "a missing file has no identity (null, not an exception)" {
            Expect.isNull (box (FileIdentity.Of(Path.Combine(freshDir "ident", "absent")))) "null"
        }
    ]

let private hashing =
    testList "ContentHash" [
        test "Sha256OfFile is the SHA-256 of the bytes, lowercase hex (FIPS 180-2 'abc' vector)" {
            let path = Path.Combine(freshDir "hash", "abc")
            File.WriteAllText(path, "abc")
            Expect.equal (ContentHash.Sha256OfFile path) "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" "known answer"
        }

        test "same content, same hash: two files with equal bytes, and one file asked twice" {
            let dir = freshDir "hash"
            let memo = Path.Combine(dir, "memo")
            let a, b = Path.Combine(dir, "a.csv"), Path.Combine(dir, "b.csv")
            File.WriteAllText(a, "x,y\n1,2\n")
            File.WriteAllText(b, "x,y\n1,2\n")
            let h = ContentHash.OfFile(a, memo)
            Expect.equal h (sha256Hex "x,y\n1,2\n") "the bytes' SHA-256"
            Expect.equal (ContentHash.OfFile(b, memo)) h "other file, same bytes"
            Expect.equal (ContentHash.OfFile(a, memo)) h "asked again"
        }

        test "a file changed moments ago is hashed but not memoised (its ctime could still be shared by a second write)" {
            let dir = freshDir "hash"
            let memo = Path.Combine(dir, "memo")
            let path = Path.Combine(dir, "fresh.txt")
            File.WriteAllText(path, "fresh")
            Expect.equal (ContentHash.OfFile(path, memo)) (sha256Hex "fresh") "hash"
            Expect.isFalse (File.Exists(ContentHash.MemoPath(memo, path))) "no memo yet"
        }

        test "an unchanged, settled file is answered from its memo (a memo edited by hand is believed, which shows it is read)" {
            onLinux ()
            let dir = freshDir "hash"
            let memo = Path.Combine(dir, "memo")
            let path = Path.Combine(dir, "settled.txt")
            File.WriteAllText(path, "settled")
            letSettle ()
            Expect.equal (ContentHash.OfFile(path, memo)) (sha256Hex "settled") "hash"
            let memoFile = ContentHash.MemoPath(memo, path)
            Expect.isTrue (File.Exists memoFile) "memo written"
            let node = JsonNode.Parse(File.ReadAllText memoFile) |> notNull "the memo"
            node["Sha256"] <- JsonValue.Create(String('f', 64))
            File.WriteAllText(memoFile, node.ToJsonString())
            Expect.equal (ContentHash.OfFile(path, memo)) (String('f', 64)) "the memo's value, so the memo was used"
        }

        test "different content of the same size with the mtime restored gets a new hash: the memo is not reused, because ctime changed" {
            onLinux ()
            let dir = freshDir "hash"
            let memo = Path.Combine(dir, "memo")
            let path = Path.Combine(dir, "data.txt")
            File.WriteAllText(path, "aaaa")
            // A time .NET can restore exactly (it keeps 100 ns ticks; the file system keeps nanoseconds).
            File.SetLastWriteTimeUtc(path, DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc))
            letSettle ()
            Expect.equal (ContentHash.OfFile(path, memo)) (sha256Hex "aaaa") "first hash"
            Expect.isTrue (File.Exists(ContentHash.MemoPath(memo, path))) "memo written, so there is something to wrongly reuse"
            let before = FileIdentity.Of path |> notNull "identity"
            let mtime = File.GetLastWriteTimeUtc path
            File.WriteAllText(path, "bbbb")
            File.SetLastWriteTimeUtc(path, mtime)
            let after = FileIdentity.Of path |> notNull "identity"
            Expect.equal (after.Inode, after.Size, after.ModifyTimeNs) (before.Inode, before.Size, before.ModifyTimeNs) "same inode, size and mtime"
            Expect.notEqual after.ChangeTimeNs before.ChangeTimeNs "only ctime tells the files apart"
            Expect.equal (ContentHash.OfFile(path, memo)) (sha256Hex "bbbb") "the new content's hash"
        }

        test "a garbage, empty, foreign or half-filled memo is ignored and the file is hashed" {
            let dir = freshDir "hash"
            let memo = Path.Combine(dir, "memo")
            let path = Path.Combine(dir, "f.txt")
            File.WriteAllText(path, "content")
            let memoFile = ContentHash.MemoPath(memo, Path.GetFullPath path)
            Directory.CreateDirectory memo |> ignore
            let noise = Array.zeroCreate 300
            Random(3).NextBytes noise
            let identityJson =
                match FileIdentity.Of path with
                | null -> "null"
                | id -> Text.Json.JsonSerializer.Serialize id
            let full = Text.Json.JsonEncodedText.Encode(Path.GetFullPath path).ToString()
            for name, bytes in
                [ "random bytes", noise
                  "empty", [||]
                  "JSON null", Encoding.UTF8.GetBytes "null"
                  "empty object", Encoding.UTF8.GetBytes "{}"
                  "null hash", Encoding.UTF8.GetBytes $"""{{"Version":1,"Path":"{full}","Identity":{identityJson},"Sha256":null}}"""
                  "hash not hex", Encoding.UTF8.GetBytes $"""{{"Version":1,"Path":"{full}","Identity":{identityJson},"Sha256":"{String('z', 64)}"}}"""
                  "another file's memo", Encoding.UTF8.GetBytes $"""{{"Version":1,"Path":"/elsewhere","Identity":{identityJson},"Sha256":"{String('f', 64)}"}}""" ] do
                File.WriteAllBytes(memoFile, bytes)
                Expect.equal (ContentHash.OfFile(path, memo)) (sha256Hex "content") name
        }

        test "a missing file is a FileNotFoundException naming it" {
            let path = Path.Combine(freshDir "hash", "absent.txt")
            let e = Expect.throwsC (fun () -> ContentHash.OfFile(path, freshDir "memo") |> ignore) id
            Expect.isTrue (e :? FileNotFoundException) $"got {e.GetType().Name}"
            Expect.stringContains e.Message path "names it"
        }
    ]

[<Tests>]
let tests = testList "IO.ContentHash" [ identity; hashing ]
