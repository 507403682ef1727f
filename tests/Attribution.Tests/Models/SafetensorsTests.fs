module SafetensorsTests

open System
open System.Collections.Generic
open System.IO
open System.Text
open System.Text.Json
open Expecto
open TorchSharp
open type TorchSharp.torch
open Attribution.Models
open TestFiles

/// A safetensors file assembled by hand, byte by byte, per the format: u64 LE header length, JSON padded with spaces, data.
let private writeRaw (path: string) (header: string) (data: byte[]) =
    let json = Encoding.UTF8.GetBytes header
    let padded = Array.append json (Array.create ((8 - json.Length % 8) % 8) (byte ' '))
    File.WriteAllBytes(path, Array.concat [ BitConverter.GetBytes(uint64 padded.Length); padded; data ])

let private dict (pairs: (string * 'v) list) = Dictionary<string, 'v>(dict pairs) :> IReadOnlyDictionary<string, 'v>

/// Random tensors of every supported dtype, from an explicit generator.
let private everyDtype () =
    let g = new torch.Generator(42UL)
    let shape = [| 3L; 4L |]
    let ints lo hi (t: ScalarType) = torch.randint(lo, hi, shape, generator = g).to_type t
    [ "F32", torch.randn(shape, generator = g)
      "F64", torch.randn(shape, dtype = float64, generator = g)
      "F16", torch.randn(shape, generator = g).to_type float16
      "BF16", torch.randn(shape, generator = g).to_type bfloat16
      "I64", ints -1000000L 1000000L int64
      "I32", ints -100000L 100000L int32
      "I16", ints -30000L 30000L int16
      "I8", ints -128L 128L int8
      "U8", ints 0L 256L uint8
      "BOOL", ints 0L 2L ScalarType.Bool
      "scalar", torch.tensor 3.5f
      "empty", torch.zeros(0L, 3L) ]

let private roundTrip =
    testList "round trip" [
        test "every dtype (random values), a scalar and an empty tensor come back with identical dtype, shape and bytes" {
            use scope = torch.NewDisposeScope()
            let path = Path.Combine(freshDir "st", "all.safetensors")
            let tensors = everyDtype ()
            Safetensors.Save(path, dict tensors)
            let loaded = Safetensors.Load path
            Expect.equal (loaded.Keys |> Seq.sort |> List.ofSeq) (tensors |> List.map fst |> List.sort) "names"
            for name, t in tensors do
                let back = loaded[name]
                Expect.equal back.dtype t.dtype $"{name}: dtype"
                Expect.equal back.shape t.shape $"{name}: shape"
                Expect.equal (back.bytes.ToArray()) (t.bytes.ToArray()) $"{name}: bytes"
                Expect.equal back.device_type DeviceType.CPU $"{name}: on CPU"
                back.Dispose()
        }

        test "metadata round-trips (beside the two checksums Save adds) and ReadMetadata reads it without the tensors" {
            use scope = torch.NewDisposeScope()
            let path = Path.Combine(freshDir "st", "meta.safetensors")
            Safetensors.Save(path, dict [ "w", torch.ones(2L) ], dict [ "format", "pt"; "dataset", "fashion-mnist" ])
            let meta = Safetensors.ReadMetadata path
            Expect.equal (meta.Keys |> Seq.sort |> List.ofSeq) [ "content_sha256"; "dataset"; "format"; "header_sha256" ] "the caller's two entries and the two checksums"
            Expect.equal meta["dataset"] "fashion-mnist" "value"
            let bare = Safetensors.ReadMetadata(let p = Path.Combine(freshDir "st", "none.safetensors") in Safetensors.Save(p, dict [ "w", torch.ones(1L) ]); p)
            Expect.equal (bare.Keys |> Seq.sort |> List.ofSeq) [ "content_sha256"; "header_sha256" ] "without caller metadata, only the checksums"
        }

        test "a non-contiguous view is saved as its logical (row-major) values" {
            use scope = torch.NewDisposeScope()
            let path = Path.Combine(freshDir "st", "t.safetensors")
            let m = torch.arange(6.0f).reshape(2L, 3L).t()
            Safetensors.Save(path, dict [ "t", m ])
            let back = (Safetensors.Load path)["t"]
            Expect.equal (back.data<float32>().ToArray()) [| 0f; 3f; 1f; 4f; 2f; 5f |] "transposed values"
            back.Dispose()
        }
    ]

let private againstSpec =
    testList "against the format, not our writer" [
        test "a file written by hand byte by byte loads with the expected values (entries unsorted, F32 I64 BF16 F16 BOOL)" {
            use scope = torch.NewDisposeScope()
            let path = Path.Combine(freshDir "st", "hand.safetensors")
            let header =
                """{"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},"""
                + """"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"c":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},"""
                + """"d":{"dtype":"F16","shape":[2,1],"data_offsets":[20,24]},"e":{"dtype":"BOOL","shape":[3],"data_offsets":[24,27]}}"""
            let data =
                [| 0x00uy; 0x00uy; 0x80uy; 0x3Fuy; 0x00uy; 0x00uy; 0x20uy; 0xC0uy   // F32 1.0, -2.5
                   0x07uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0uy                         // I64 7
                   0x80uy; 0x3Fuy; 0x00uy; 0xC0uy                                    // BF16 1.0, -2.0
                   0x00uy; 0x3Cuy; 0x00uy; 0x38uy                                    // F16 1.0, 0.5
                   0x01uy; 0x00uy; 0x01uy |]                                         // BOOL true, false, true
            writeRaw path header data
            let t = Safetensors.Load path
            Expect.equal (t["a"].data<float32>().ToArray()) [| 1.0f; -2.5f |] "F32"
            Expect.equal (t["b"].data<int64>().ToArray()) [| 7L |] "I64"
            Expect.equal (t["c"].to_type(float32).data<float32>().ToArray()) [| 1.0f; -2.0f |] "BF16"
            Expect.equal t["d"].shape [| 2L; 1L |] "F16 shape"
            Expect.equal (t["d"].to_type(float32).data<float32>().ToArray()) [| 1.0f; 0.5f |] "F16"
            Expect.equal (t["e"].data<bool>().ToArray()) [| true; false; true |] "BOOL"
            Expect.equal ((Safetensors.ReadMetadata path)["format"]) "pt" "metadata"
            for v in t.Values do v.Dispose()
        }

        test "our writer produces the documented layout byte for byte" {
            use scope = torch.NewDisposeScope()
            let path = Path.Combine(freshDir "st", "w.safetensors")
            Safetensors.Save(path, dict [ "z", torch.tensor([| 7L |]); "w", torch.tensor([| 1.0f; -2.5f |]) ], dict [ "format", "pt" ])
            let bytes = File.ReadAllBytes path
            let n = Convert.ToInt32(BitConverter.ToUInt64(bytes, 0))
            Expect.equal (n % 8) 0 "header padded to a multiple of 8"
            Expect.equal bytes.Length (8 + n + 16) "length field + header + 16 data bytes"
            use doc = JsonDocument.Parse(ReadOnlyMemory(bytes, 8, n))
            let w = doc.RootElement.GetProperty "w"
            Expect.equal (w.GetProperty("dtype").GetString()) "F32" "dtype"
            Expect.equal [ for x in w.GetProperty("shape").EnumerateArray() -> x.GetInt64() ] [ 2L ] "shape"
            Expect.equal [ for x in w.GetProperty("data_offsets").EnumerateArray() -> x.GetInt64() ] [ 0L; 8L ] "w first (sorted names)"
            Expect.equal [ for x in doc.RootElement.GetProperty("z").GetProperty("data_offsets").EnumerateArray() -> x.GetInt64() ] [ 8L; 16L ] "z second"
            Expect.equal (doc.RootElement.GetProperty("__metadata__").GetProperty("format").GetString()) "pt" "metadata"
            Expect.equal bytes[8 + n ..] [| 0uy; 0uy; 0x80uy; 0x3Fuy; 0uy; 0uy; 0x20uy; 0xC0uy; 7uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0uy; 0uy |] "little-endian data"
        }
    ]

let private corrupt =
    let expectBad (name: string) (write: string -> unit) (fragments: string list) =
        test $"corrupt file: {name}" {
            let path = Path.Combine(freshDir "st", "bad.safetensors")
            write path
            let e = Expect.throwsC (fun () -> Safetensors.Load path |> ignore) id
            Expect.isTrue (e :? InvalidDataException) $"InvalidDataException, got {e.GetType().Name}: {e.Message}"
            Expect.stringContains e.Message path "names the file"
            for f in fragments do Expect.stringContains e.Message f "explains the rule"
        }
    testList "corrupt headers" [
        expectBad "header length beyond the end" (fun p -> File.WriteAllBytes(p, Array.append (BitConverter.GetBytes 1000UL) (Array.zeroCreate 16))) [ "header length is 1000" ]
        expectBad "shorter than the length field" (fun p -> File.WriteAllBytes(p, [| 1uy; 2uy |])) [ "fewer than the 8-byte" ]
        expectBad "not JSON" (fun p -> writeRaw p "{nope" [||]) [ "not valid JSON" ]
        expectBad "size does not match shape x dtype" (fun p -> writeRaw p """{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}""" (Array.zeroCreate 12)) [ "'w'"; "needs 16" ]
        expectBad "unknown dtype" (fun p -> writeRaw p """{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}""" [| 0uy |]) [ "F8_E4M3"; "supported" ]
        expectBad "gap between tensors" (fun p -> writeRaw p """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}""" (Array.zeroCreate 3)) [ "'b' starts at 2" ]
        expectBad "data section longer than the tensors" (fun p -> writeRaw p """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""" (Array.zeroCreate 5)) [ "cover 1 bytes"; "has 5" ]
        expectBad "negative shape" (fun p -> writeRaw p """{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}""" [||]) [ "non-negative integers" ]
    ]

/// Element-wise identical (same shape, every value equal).
let private same (a: Tensor) (b: Tensor) = a.shape = b.shape && a.eq(b).all().item<bool>()

let private mlp () : nn.Module<Tensor, Tensor> =
    nn.Sequential([| nn.Linear(4L, 8L) :> nn.Module<Tensor, Tensor>; nn.BatchNorm1d(8L); nn.ReLU(); nn.Linear(8L, 3L) |])

let private modules =
    testList "SaveModule / LoadModule" [
        test "a Sequential with BatchNorm round-trips: outputs match exactly after loading into a fresh model" {
            use scope = torch.NewDisposeScope()
            let path = Path.Combine(freshDir "st", "mlp.safetensors")
            let x = torch.randn([| 5L; 4L |], generator = new torch.Generator(7UL))
            torch.manual_seed 1L |> ignore
            let source = mlp ()
            source.train()
            source.forward(x) |> ignore   // move the running statistics away from their defaults: buffers must travel too
            source.eval()
            Safetensors.SaveModule(source, path, dict [ "arch", "mlp" ])
            torch.manual_seed 2L |> ignore
            let target = mlp ()
            target.eval()
            Expect.isFalse (same (source.forward x) (target.forward x)) "differ before loading"
            Safetensors.LoadModule(target, path)
            Expect.isTrue (same (source.forward x) (target.forward x)) "identical after loading"
            Expect.isTrue (target.parameters() |> Seq.forall (fun p -> p.requires_grad)) "parameters stay trainable"
            Expect.equal ((Safetensors.ReadMetadata path)["arch"]) "mlp" "metadata"
        }

        test "a different architecture is refused, listing missing, unexpected and mismatched names" {
            use scope = torch.NewDisposeScope()
            let path = Path.Combine(freshDir "st", "mlp.safetensors")
            Safetensors.SaveModule(mlp (), path)
            let other = nn.Sequential([| nn.Linear(4L, 9L) :> nn.Module<Tensor, Tensor>; nn.ReLU(); nn.Linear(9L, 3L); nn.ReLU(); nn.Linear(3L, 3L) |])
            let before = (other.state_dict()["0.weight"]).clone()
            let e = Expect.throwsC (fun () -> Safetensors.LoadModule(other, path)) id
            Expect.stringContains e.Message "missing from the file: 2.bias, 2.weight, 4.bias, 4.weight" "missing"
            Expect.stringContains e.Message "unexpected in the file: 1.bias" "unexpected"
            Expect.stringContains e.Message "0.weight (module [9, 4], file [8, 4])" "mismatched"
            Expect.isTrue (same before (other.state_dict()["0.weight"])) "nothing copied"
        }
    ]

[<Tests>]
let tests = testList "Models.Safetensors" [ roundTrip; againstSpec; corrupt; modules ]
