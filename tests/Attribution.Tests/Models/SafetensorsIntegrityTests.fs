/// Sealed safetensors files: checksums written by Save, checked by Verify and LoadVerified, and the refusals of Load and LoadModule.
module SafetensorsIntegrityTests

open System
open System.Collections.Generic
open System.IO
open System.Security.Cryptography
open System.Text
open Expecto
open TorchSharp
open type TorchSharp.torch
open Attribution.IO
open Attribution.Models
open TestFiles

let private dict (pairs: (string * 'v) list) = Dictionary<string, 'v>(dict pairs) :> IReadOnlyDictionary<string, 'v>

/// A sealed file with two tensors (one F32, one I64) and one metadata entry.
let private writeSample (path: string) =
    use scope = torch.NewDisposeScope()
    Safetensors.Save(path, dict [ "a", torch.arange(10.0f); "b", torch.tensor([| 1L; 2L; 3L |]) ], dict [ "note", "x" ])

let private headerLength (bytes: byte[]) = Convert.ToInt32(BitConverter.ToUInt64(bytes, 0))

/// Where the ASCII text first occurs in the bytes (the test fails if it does not).
let private find (bytes: byte[]) (text: string) =
    let at = bytes.AsSpan().IndexOf(ReadOnlySpan(Encoding.ASCII.GetBytes text))
    Expect.isGreaterThanOrEqual at 0 $"'{text}' in the file"
    at

/// A file of random bytes of the same length.
let private garbage (bytes: byte[]) =
    let r = Array.zeroCreate bytes.Length
    Random(5).NextBytes r
    r

/// The exception f throws, which must be of type 'e.
let private throwsOf<'e when 'e :> exn> (f: unit -> unit) (what: string) : 'e =
    match Expect.throwsC f id with
    | :? 'e as e -> e
    | other -> failtestf "%s: expected %s, got %s: %s" what typeof<'e>.Name (other.GetType().Name) other.Message

/// Writes the tensors with Save, in a dispose scope of its own.
let private save (path: string) (tensors: (string * (unit -> Tensor)) list) =
    use scope = torch.NewDisposeScope()
    Safetensors.Save(path, dict [ for name, make in tensors -> name, make () ])

let private flipBit (index: int) (bit: int) (bytes: byte[]) =
    let copy = Array.copy bytes
    copy[index] <- copy[index] ^^^ (1uy <<< bit)
    copy

/// Verify's status, and LoadVerified's CorruptFileException (path and reason), for a file written by Save then damaged.
let private damaged (name: string) (damage: byte[] -> byte[]) (expected: SafetensorsStatus) (fragments: string list) =
    test $"{name}: Verify says {expected} in one line naming the file; LoadVerified throws CorruptFileException" {
        let path = Path.Combine(freshDir "sti", "x.safetensors")
        writeSample path
        File.WriteAllBytes(path, damage (File.ReadAllBytes path))
        let check = Safetensors.Verify path
        Expect.equal check.Status expected check.Message
        Expect.isFalse check.IsValid "not valid"
        Expect.stringContains check.Message path "names the file"
        Expect.isFalse (check.Message.Contains '\n') "one line"
        let c = throwsOf<CorruptFileException> (fun () -> Safetensors.LoadVerified path |> ignore) "LoadVerified"
        Expect.equal c.Path path "Path property"
        Expect.stringContains c.Message path "message names the file"
        for f in fragments do
            Expect.stringContains c.Reason f "reason explains"
            Expect.stringContains check.Message f "Verify explains alike"
    }

let private damage =
    testList "every kind of damage is detected" [
        damaged "truncated by one byte" (fun b -> b[.. b.Length - 2]) SafetensorsStatus.Malformed [ "cover"; "data section has" ]
        damaged "truncated to half" (fun b -> b[.. b.Length / 2 - 1]) SafetensorsStatus.Malformed [ "not a valid safetensors file" ]
        damaged "zero-length" (fun _ -> [||]) SafetensorsStatus.Malformed [ "0 bytes" ]
        damaged "random garbage of the same length" garbage SafetensorsStatus.Malformed [ "header length" ]
        damaged "one bit flipped in the data section" (fun b -> flipBit (b.Length - 3) 4 b) SafetensorsStatus.Mismatch [ "data does not match its checksum" ]
        damaged "one bit flipped in a brace of the header JSON" (fun b -> flipBit 8 1 b) SafetensorsStatus.Malformed [ "not valid JSON" ]
        damaged "one bit flipped in a tensor name of the header ('a' becomes 'c')" (fun b -> flipBit (find b "\"a\":{" + 1) 1 b)
            SafetensorsStatus.Mismatch [ "header does not match its checksum" ]
        damaged "one bit flipped in a metadata value ('x' becomes 'y')" (fun b -> flipBit (find b "\"note\":\"x\"" + 8) 0 b)
            SafetensorsStatus.Mismatch [ "header does not match its checksum" ]
        damaged "one bit flipped in the recorded data checksum" (fun b -> flipBit (find b "\"content_sha256\":\"" + 20) 0 b)
            SafetensorsStatus.Mismatch [ "header does not match" ]
        damaged "bytes appended" (fun b -> Array.append b [| 0uy; 1uy; 2uy |]) SafetensorsStatus.Malformed [ "data section has" ]
        damaged "the header length field damaged" (fun b -> flipBit 0 3 b) SafetensorsStatus.Malformed [ "not a valid safetensors file" ]

        test "every single-bit flip anywhere in a small sealed file: Verify is never Valid, LoadVerified always throws CorruptFileException, Load throws nothing but InvalidDataException" {
            let dir = freshDir "sti"
            let path = Path.Combine(dir, "small.safetensors")
            save path [ "w", fun () -> torch.tensor([| 1.5f; -2.0f |]) ]
            let original = File.ReadAllBytes path
            let flipped = Path.Combine(dir, "flipped.safetensors")
            for i in 0 .. original.Length - 1 do
                for bit in 0 .. 7 do
                    File.WriteAllBytes(flipped, flipBit i bit original)
                    let check = Safetensors.Verify flipped
                    Expect.isTrue (check.Status = SafetensorsStatus.Malformed || check.Status = SafetensorsStatus.Mismatch) $"byte {i} bit {bit}: {check.Message}"
                    Expect.throwsT<CorruptFileException> (fun () -> Safetensors.LoadVerified flipped |> ignore) $"byte {i} bit {bit}: LoadVerified"
                    try
                        for t in (Safetensors.Load flipped).Values do t.Dispose()
                    with
                    | :? InvalidDataException -> ()
                    | e -> failtest $"byte {i} bit {bit}: Load threw {e.GetType().Name}: {e.Message}"
        }

        test "random garbage of many lengths, with and without a plausible length field: Verify never throws and says Malformed" {
            let dir = freshDir "sti"
            let rng = Random 11
            for case in 0 .. 199 do
                let path = Path.Combine(dir, $"g{case}.safetensors")
                let body = Array.zeroCreate (rng.Next(0, 300))
                rng.NextBytes body
                if case % 2 = 0 && body.Length >= 8 then BitConverter.GetBytes(uint64 (rng.Next(0, body.Length - 7))).CopyTo(body, 0)
                File.WriteAllBytes(path, body)
                let check = Safetensors.Verify path
                Expect.equal check.Status SafetensorsStatus.Malformed $"case {case}: {check.Message}"
                Expect.throwsT<InvalidDataException> (fun () -> Safetensors.Load path |> ignore) $"case {case}: Load"
        }
    ]

let private sealing =
    testList "sealing" [
        test "a round trip verifies Valid and LoadVerified returns the tensors" {
            use scope = torch.NewDisposeScope()
            let path = Path.Combine(freshDir "sti", "ok.safetensors")
            writeSample path
            let check = Safetensors.Verify path
            Expect.equal check.Status SafetensorsStatus.Valid check.Message
            Expect.isTrue check.IsValid "IsValid"
            let t = Safetensors.LoadVerified path
            Expect.equal (t["a"].data<float32>().ToArray()) [| 0f .. 9f |] "a"
            Expect.equal (t["b"].data<int64>().ToArray()) [| 1L; 2L; 3L |] "b"
        }

        test "content_sha256 is the SHA-256 (lowercase hex) of every byte after the header" {
            let path = Path.Combine(freshDir "sti", "ok.safetensors")
            writeSample path
            let bytes = File.ReadAllBytes path
            let expected = Convert.ToHexStringLower(SHA256.HashData(ReadOnlySpan(bytes, 8 + headerLength bytes, bytes.Length - 8 - headerLength bytes)))
            let meta = Safetensors.ReadMetadata path
            Expect.equal meta["content_sha256"] expected "content_sha256"
            Expect.equal meta["note"] "x" "the caller's metadata is kept"
        }

        test "Save refuses a caller metadata key named content_sha256 or header_sha256, naming it" {
            use scope = torch.NewDisposeScope()
            for key in [ "content_sha256"; "header_sha256" ] do
                let path = Path.Combine(freshDir "sti", "r.safetensors")
                let e = throwsOf<ArgumentException> (fun () -> Safetensors.Save(path, dict [ "w", torch.ones(1L) ], dict [ key, "mine" ])) "Save"
                Expect.stringContains e.Message key "names the key"
                Expect.isFalse (File.Exists path) "nothing written"
        }

        test "a well-formed file without checksums (as PyTorch writes them): Verify says NoChecksum, LoadVerified refuses it, Load reads it" {
            let path = Path.Combine(freshDir "sti", "torch.safetensors")
            let json = Encoding.UTF8.GetBytes """{"__metadata__":{"format":"pt"},"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"""
            let padded = Array.append json (Array.create ((8 - json.Length % 8) % 8) (byte ' '))
            File.WriteAllBytes(path, Array.concat [ BitConverter.GetBytes(uint64 padded.Length); padded; [| 4uy; 5uy |] ])
            let check = Safetensors.Verify path
            Expect.equal check.Status SafetensorsStatus.NoChecksum check.Message
            let e = throwsOf<CorruptFileException> (fun () -> Safetensors.LoadVerified path |> ignore) "LoadVerified"
            Expect.stringContains e.Reason "no checksums" "says why"
            let loaded = Safetensors.Load path
            Expect.equal (loaded["w"].data<byte>().ToArray()) [| 4uy; 5uy |] "Load reads it"
            loaded["w"].Dispose()
        }

        test "a missing file: Verify says Missing, LoadVerified throws FileNotFoundException" {
            let path = Path.Combine(freshDir "sti", "absent.safetensors")
            Expect.equal (Safetensors.Verify path).Status SafetensorsStatus.Missing "Missing"
            Expect.throwsT<FileNotFoundException> (fun () -> Safetensors.LoadVerified path |> ignore) "not found"
        }
    ]

let private plainLoad =
    testList "Load of a damaged file" [
        for name, cut in [ "by one byte", (fun (n: int) -> n - 1); "to half", (fun n -> n / 2) ] do
            test $"truncated {name}: InvalidDataException naming the file and what is wrong, not EndOfStreamException" {
                let path = Path.Combine(freshDir "sti", "cut.safetensors")
                writeSample path
                let bytes = File.ReadAllBytes path
                File.WriteAllBytes(path, bytes[.. cut bytes.Length - 1])
                let e = throwsOf<InvalidDataException> (fun () -> Safetensors.Load path |> ignore) "Load"
                Expect.stringContains e.Message path "names the file"
                Expect.stringContains e.Message "not a valid safetensors file" "says what is wrong"
            }
        test "a key repeated in the header is refused (which copy would count?)" {
            let path = Path.Combine(freshDir "sti", "dup.safetensors")
            let json = Encoding.UTF8.GetBytes """{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"""
            let padded = Array.append json (Array.create ((8 - json.Length % 8) % 8) (byte ' '))
            File.WriteAllBytes(path, Array.concat [ BitConverter.GetBytes(uint64 padded.Length); padded; [| 4uy; 5uy |] ])
            let e = throwsOf<InvalidDataException> (fun () -> Safetensors.Load path |> ignore) "Load"
            Expect.stringContains e.Message "appears twice" "says why"
        }
    ]

let private mlp () : nn.Module<Tensor, Tensor> =
    nn.Sequential([| nn.Linear(4L, 8L) :> nn.Module<Tensor, Tensor>; nn.BatchNorm1d(8L); nn.ReLU(); nn.Linear(8L, 3L) |])

let private nonFinite =
    test "LoadModule refuses NaN and Inf weights (F32, F16, BF16), naming each tensor with its counts, and leaves the module unchanged" {
        use scope = torch.NewDisposeScope()
        let path = Path.Combine(freshDir "sti", "nan.safetensors")
        torch.manual_seed 3L |> ignore
        let source = mlp ()
        let state = Dictionary<string, Tensor>()
        for KeyValue(name, t) in source.state_dict() do state[name] <- t.clone()
        /// The tensor's values with some replaced, in the given dtype.
        let poison (name: string) (values: (int * float32) list) (dtype: ScalarType) =
            let v = state[name].data<float32>().ToArray()
            for i, x in values do v[i] <- x
            state[name] <- torch.tensor(v).reshape(state[name].shape).to_type dtype
        poison "0.weight" [ 0, nanf; 5, nanf; 7, nanf ] float32
        poison "0.bias" [ 0, nanf; 1, infinityf ] bfloat16
        poison "3.bias" [ 2, -infinityf ] float16
        Safetensors.Save(path, state)
        let target = mlp ()
        let before = [ for KeyValue(name, t) in target.state_dict() -> name, t.clone() ]
        let e = throwsOf<InvalidDataException> (fun () -> Safetensors.LoadModule(target, path)) "LoadModule"
        Expect.stringContains e.Message "the weights hold non-finite values: 0.bias (1 NaN, 1 Inf), 0.weight (3 NaN), 3.bias (1 Inf)" "names and counts"
        Expect.stringContains e.Message path "names the file"
        for name, t in before do
            Expect.isTrue (t.eq(target.state_dict()[name]).all().item<bool>()) $"{name} unchanged"
    }

[<Tests>]
let tests = testList "Models.Safetensors integrity" [ damage; sealing; plainLoad; nonFinite ]
