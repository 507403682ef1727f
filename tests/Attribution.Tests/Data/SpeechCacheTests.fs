/// The synthesised speech cache: a damaged store is moved aside, reported on one stderr line, and rebuilt.
module SpeechCacheTests

open System
open System.IO
open Expecto
open Attribution.Data
open Attribution.Data.Audio
open Attribution.Models
open TestFiles

/// A tiny store: three utterances of two words by two speakers, one held out.
let private store () =
    SynthesisedSpeech([| 0.1f; 0.2f; 0.3f; -0.1f; -0.2f; 0.5f |], [| 0L; 2L; 3L; 6L |], [| 0L; 1L; 0L |], [| 0; 1; 1 |],
                      [| "yes"; "no" |], [| "en-us+m1"; "en-gb+f2" |], Collections.Generic.HashSet [ "en-gb+f2" ], 16000)

/// What the action writes to stderr, and its result.
let private capturingStderr (action: unit -> 'a) =
    let saved = Console.Error
    use writer = new StringWriter()
    Console.SetError writer
    try
        let result = action ()
        result, writer.ToString()
    finally
        Console.SetError saved

/// The files MoveAside made from path.
let private asideFiles (path: string) =
    match Path.GetDirectoryName path, Path.GetFileName path with
    | null, _ | _, null -> failtest $"{path} has no folder or name"
    | folder, name -> Directory.GetFiles(folder, name + ".corrupt-*")

let private damagedStore (name: string) (damage: byte[] -> byte[]) =
    test $"{name}: TryLoad returns null (rebuild), moves the file to .corrupt-<time> and says so in one stderr line" {
        let path = Path.Combine(freshDir "speech-cache", "speech.safetensors")
        store().Save(path, "k1")
        let original = File.ReadAllBytes path
        let bad = damage original
        File.WriteAllBytes(path, bad)
        let loaded, stderr = capturingStderr (fun () -> SynthesisedSpeech.TryLoad(path, "k1"))
        Expect.isNull (box loaded) "treated as missing"
        Expect.isFalse (File.Exists path) "moved out of the way"
        let aside = asideFiles path
        Expect.equal aside.Length 1 "one file set aside"
        Expect.equal (File.ReadAllBytes aside[0]) bad "with the damaged bytes, for inspection"
        let lines = stderr.TrimEnd().Split('\n')
        Expect.equal lines.Length 1 $"one line: {stderr}"
        Expect.stringContains lines[0] path "names the cache file"
        Expect.stringContains lines[0] aside[0] "and where it went"
    }

[<Tests>]
let tests =
    testList "Data.SynthesisedSpeech cache" [
        test "an intact store loads with its values and nothing is moved or printed" {
            let path = Path.Combine(freshDir "speech-cache", "speech.safetensors")
            store().Save(path, "k1")
            Expect.equal (Safetensors.Verify path).Status SafetensorsStatus.Valid "sealed"
            let loaded, stderr = capturingStderr (fun () -> SynthesisedSpeech.TryLoad(path, "k1"))
            match loaded with
            | null -> failtest "the store did not load"
            | s ->
                Expect.sequenceEqual s.Samples (store().Samples) "samples"
                Expect.sequenceEqual s.Offsets (store().Offsets) "offsets"
                Expect.isTrue (s.IsTest 1) "held-out speaker"
            Expect.equal stderr "" "silent"
            Expect.isEmpty (asideFiles path) "nothing set aside"
        }

        test "a store for another key is not loaded and not moved (it is not corrupt)" {
            let path = Path.Combine(freshDir "speech-cache", "speech.safetensors")
            store().Save(path, "k1")
            Expect.isNull (box (SynthesisedSpeech.TryLoad(path, "k2"))) "other key"
            Expect.isTrue (File.Exists path) "left in place"
        }

        test "Synthesise rebuilds a corrupt cache: the same utterances again, the bad file set aside, a valid cache in its place" {
            if not (try (Espeak().Version() |> ignore; true) with :? DataNotFoundException -> false) then
                skiptest "espeak-ng is not installed (sudo apt-get install espeak-ng)"
            let folder = freshDir "speech-cache"
            let options = SpeechSynthesisOptions(UtterancesPerWord = 2, Words = [| "yes" |], Voices = [| "en-us" |], Variants = [| "m1"; "f2" |], Seed = 5L)
            let first = SpeechCommandsSynth.Synthesise(folder, options)
            let cache = Directory.GetFiles(folder, "*.safetensors") |> Array.exactlyOne
            let bytes = File.ReadAllBytes cache
            bytes[bytes.Length - 1] <- bytes[bytes.Length - 1] ^^^ 0x10uy
            File.WriteAllBytes(cache, bytes)
            let second, stderr = capturingStderr (fun () -> SpeechCommandsSynth.Synthesise(folder, options))
            Expect.sequenceEqual second.Samples first.Samples "synthesised again, identically"
            Expect.stringContains stderr "data does not match its checksum" "says why"
            Expect.equal (asideFiles cache).Length 1 "bad file set aside"
            Expect.equal (Safetensors.Verify cache).Status SafetensorsStatus.Valid "a valid cache again"
        }

        damagedStore "one bit flipped in the samples" (fun b -> let c = Array.copy b in c[c.Length - 1] <- c[c.Length - 1] ^^^ 1uy; c)
        damagedStore "truncated by one byte" (fun b -> b[.. b.Length - 2])
        damagedStore "an empty file" (fun _ -> [||])
    ]
