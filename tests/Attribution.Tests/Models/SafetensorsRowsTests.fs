/// Writing a safetensors file a block of rows at a time, and reading blocks of rows back: the streaming path of a
/// step's maps, which must give the very file Save gives and the very rows Load gives.
module SafetensorsRowsTests

open System
open System.Collections.Generic
open System.IO
open Expecto
open TorchSharp
open Attribution.Models
open TestFiles

let private dict (pairs: (string * 'v) list) = Dictionary<string, 'v>(dict pairs) :> IReadOnlyDictionary<string, 'v>

/// A random cut of `rows` into blocks (each at least one row), in a random order.
let private shuffledBlocks (random: Random) (rows: int64) =
    let cuts = [ 0L; yield! [ for _ in 1 .. random.Next(0, 4) -> int64 (random.Next(1, max 2 (int rows))) ] |> List.filter (fun c -> c < rows); rows ] |> List.distinct |> List.sort
    cuts |> List.pairwise |> List.filter (fun (a, b) -> b > a) |> List.sortBy (fun _ -> random.Next())

let private declared (tensors: (string * torch.Tensor) list) = [ for name, t in tensors -> struct (name, t.dtype, t.shape) ]

/// Declared with a placeholder metadata of another length in half the cases, the final one given at Commit (a run time
/// known only at the end).
let private writeInBlocks (path: string) (random: Random) (tensors: (string * torch.Tensor) list) (metadata: IReadOnlyDictionary<string, string>) =
    let lateMetadata = random.Next 2 = 0
    use writer = new SafetensorsRowWriter(path, declared tensors, (if lateMetadata then dict [ "seconds", "" ] else metadata))
    for name, t in tensors |> List.sortBy (fun _ -> random.Next()) do
        if t.shape.Length = 0 then writer.Write(name, 0L, t)
        else for first, last in shuffledBlocks random t.shape.[0] do writer.Write(name, first, t.narrow(0L, first, last - first))
    if lateMetadata then writer.Commit metadata else writer.Commit()

[<Tests>]
let tests =
    testList "Models.SafetensorsRows" [
        test "blocks of rows written in any order give the file Save writes, byte for byte (random shapes, dtypes, cuts)" {
            use scope = torch.NewDisposeScope()
            let random = Random(7)
            let g = new torch.Generator(11UL)
            for trial in 1 .. 20 do
                let rows = int64 (random.Next(1, 40))
                let tensors =
                    [ "maps", torch.randn([| rows; 1L + int64 (random.Next 3); 5L |], generator = g)
                      "diagnostic.entropy", torch.randn([| rows |], dtype = torch.ScalarType.Float64, generator = g)
                      "labels", torch.randint(0L, 10L, [| rows |], generator = g)
                      "bits", torch.randint(0L, 2L, [| rows; 3L |], generator = g).to_type torch.ScalarType.Bool ]
                let metadata = dict [ "seconds", String.replicate trial "9"; "method", "smooth_grad" ]
                let dir = freshDir "rows"
                let whole, blocks = Path.Combine(dir, "whole.safetensors"), Path.Combine(dir, "blocks.safetensors")
                Safetensors.Save(whole, dict tensors, metadata)
                writeInBlocks blocks random tensors metadata
                Expect.equal (File.ReadAllBytes blocks) (File.ReadAllBytes whole) $"trial {trial}: the same bytes"
                Expect.isTrue (Safetensors.Verify blocks).IsValid $"trial {trial}: sealed and valid"
                Expect.isEmpty (Directory.GetFiles(dir, "*.tmp~", SearchOption.AllDirectories)) "no temporary file left"
        }

        test "a block of rows read back equals those rows of the tensor Load gives, for any range" {
            use scope = torch.NewDisposeScope()
            let g = new torch.Generator(3UL)
            let maps = torch.randn([| 17L; 2L; 3L |], generator = g)
            let path = Path.Combine(freshDir "rows", "maps.safetensors")
            Safetensors.Save(path, dict [ "maps", maps; "diagnostic.gap", torch.arange(17L).to_type torch.ScalarType.Float64 ])
            use reader = new SafetensorsRows(path)
            Expect.equal (reader.Shape "maps") [| 17L; 2L; 3L |] "shape from the header"
            for first in 0L .. 17L do
                for count in 0L .. 17L - first do
                    use block = reader.Read("maps", first, count)
                    Expect.equal block.shape [| count; 2L; 3L |] "block shape"
                    Expect.equal (block.bytes.ToArray()) (maps.narrow(0L, first, count).contiguous().bytes.ToArray()) $"rows {first}+{count}"
            use all = reader.ReadAll "diagnostic.gap"
            Expect.equal (all.data<float>().ToArray()) [| for i in 0 .. 16 -> float i |] "a whole tensor"
            Expect.throwsC (fun () -> reader.Read("maps", 10L, 8L) |> ignore) (fun e -> Expect.stringContains e.Message "outside its 17 rows" "names the extent")
            Expect.throwsC (fun () -> reader.Read("map", 0L, 1L) |> ignore) (fun e -> Expect.stringContains e.Message "it has" "names what the file has")
        }

        test "a writer whose rows are not all written publishes nothing and leaves no temporary file" {
            use scope = torch.NewDisposeScope()
            let dir = freshDir "rows"
            let path = Path.Combine(dir, "partial.safetensors")
            do
                use writer = new SafetensorsRowWriter(path, [ struct ("maps", torch.ScalarType.Float32, [| 4L; 2L |]) ])
                writer.Write("maps", 0L, torch.ones(3L, 2L))
                Expect.throwsC (fun () -> writer.Commit()) (fun e -> Expect.stringContains e.Message "1 of the 4 rows of 'maps' were never written (the first: row 3)" "names the missing rows")
            Expect.isFalse (File.Exists path) "nothing at the path"
            Expect.isEmpty (Directory.GetFiles dir) "the temporary file is gone"
        }

        test "a block of the wrong dtype, row shape or extent is refused, naming what was declared" {
            use scope = torch.NewDisposeScope()
            let path = Path.Combine(freshDir "rows", "bad.safetensors")
            use writer = new SafetensorsRowWriter(path, [ struct ("maps", torch.ScalarType.Float32, [| 4L; 2L |]) ])
            Expect.throwsC (fun () -> writer.Write("maps", 0L, torch.ones(1L, 2L, dtype = torch.ScalarType.Float64))) (fun e -> Expect.stringContains e.Message "declared Float32" "dtype")
            Expect.throwsC (fun () -> writer.Write("maps", 0L, torch.ones(1L, 3L))) (fun e -> Expect.stringContains e.Message "rows of shape [2]" "row shape")
            Expect.throwsC (fun () -> writer.Write("maps", 3L, torch.ones(2L, 2L))) (fun e -> Expect.stringContains e.Message "outside its 4 rows" "extent")
            Expect.throwsC (fun () -> writer.Write("other", 0L, torch.ones(1L, 2L))) (fun e -> Expect.stringContains e.Message "was not declared" "name")
        }
    ]
