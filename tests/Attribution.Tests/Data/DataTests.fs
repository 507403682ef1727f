module DataTests

open System
open System.Diagnostics
open System.IO
open System.IO.Compression
open System.Security.Cryptography
open Expecto
open TorchSharp
open Attribution.Data
open TestFiles

/// Writes a gzip-compressed IDX file: big-endian magic, big-endian sizes, then the bytes.
let private writeIdx (path: string) (magic: uint32) (dims: int list) (data: byte[]) =
    use file = File.Create path
    use gz = new GZipStream(file, CompressionLevel.Fastest)
    let bigEndian (x: uint32) = [| byte (x >>> 24); byte (x >>> 16); byte (x >>> 8); byte x |]
    gz.Write(bigEndian magic, 0, 4)
    for d in dims do gz.Write(bigEndian (uint32 d), 0, 4)
    gz.Write(data, 0, data.Length)

/// Three 2x2 images with known bytes, labels 1, 0, 9.
let private syntheticRoot () =
    let root = freshDir "idx"
    writeIdx (Path.Combine(root, "t10k-images-idx3-ubyte.gz")) 0x803u [ 3; 2; 2 ] [| 0uy; 51uy; 102uy; 255uy; 1uy; 2uy; 3uy; 4uy; 255uy; 255uy; 0uy; 0uy |]
    writeIdx (Path.Combine(root, "t10k-labels-idx1-ubyte.gz")) 0x801u [ 3 ] [| 1uy; 0uy; 9uy |]
    root

let private labelsOf (d: ImageDataset) = d.Labels.data<int64>().ToArray()

let private realDataTests =
    testList "real files (Debian dataset-fashion-mnist)" [
        test "the first ten test labels are the published ones (9 2 1 1 6 1 4 6 5 7)" {
            use scope = torch.NewDisposeScope()
            use d = FashionMnist.Load(null, false, limit = 10)
            Expect.equal d.Images.shape [| 10L; 1L; 28L; 28L |] "shape [N,1,28,28]"
            Expect.equal d.Images.dtype torch.ScalarType.Float32 "float32"
            Expect.equal (labelsOf d) [| 9L; 2L; 1L; 1L; 6L; 1L; 4L; 6L; 5L; 7L |] "labels"
            Expect.equal d.ClassNames[9] "Ankle boot" "class 9"
        }

        test "the test split has 10,000 images, 1,000 per class, pixels in [0,1] reaching both ends" {
            use scope = torch.NewDisposeScope()
            use d = FashionMnist.Load(null, false)
            Expect.equal d.Count 10000 "count"
            Expect.equal (d.Labels.bincount(null).data<int64>().ToArray()) (Array.create 10 1000L) "balanced classes"
            Expect.equal (d.Images.min().ToSingle()) 0f "min 0"
            Expect.equal (d.Images.max().ToSingle()) 1f "max 1"
        }

        test "the 60,000 training images load in bulk within 15 s and start with labels 9 0 0 3 0 2 7 2 5 5" {
            use scope = torch.NewDisposeScope()
            let clock = Stopwatch.StartNew()
            use d = FashionMnist.Load(null, true)
            clock.Stop()
            Expect.equal d.Count 60000 "count"
            Expect.equal (labelsOf d |> Array.take 10) [| 9L; 0L; 0L; 3L; 0L; 2L; 7L; 2L; 5L; 5L |] "first labels"
            Expect.isLessThan clock.Elapsed.TotalSeconds 15.0 "bulk load, not per-pixel"
        }

        test "ContentHash is 64 hex digits, repeatable, and differs between the splits" {
            let train = FashionMnist.ContentHash(null, true)
            let test = FashionMnist.ContentHash(null, false)
            Expect.equal train.Length 64 "sha256 hex"
            Expect.isTrue (train |> Seq.forall Uri.IsHexDigit) "hex"
            Expect.equal (FashionMnist.ContentHash(null, true)) train "repeatable"
            Expect.notEqual train test "splits differ"
        }
    ]

let private syntheticTests =
    testList "synthetic IDX files" [
        test "pixels are bytes / 255 in file order and labels are read exactly" {
            use scope = torch.NewDisposeScope()
            use d = FashionMnist.Load(syntheticRoot (), false)
            Expect.equal d.Images.shape [| 3L; 1L; 2L; 2L |] "shape"
            let pixels = d.Images.data<float32>().ToArray()
            Expect.equal pixels[0..3] [| 0f; 51f / 255f; 102f / 255f; 1f |] "first image"
            Expect.equal (labelsOf d) [| 1L; 0L; 9L |] "labels"
        }

        test "limit keeps the first samples" {
            use scope = torch.NewDisposeScope()
            use d = FashionMnist.Load(syntheticRoot (), false, limit = 2)
            Expect.equal (labelsOf d) [| 1L; 0L |] "first two"
            Expect.equal d.Images.shape [| 2L; 1L; 2L; 2L |] "shape"
        }

        test "ContentHash is SHA-256 of the image file bytes followed by the label file bytes" {
            let root = syntheticRoot ()
            let bytes = Array.append (File.ReadAllBytes(Path.Combine(root, "t10k-images-idx3-ubyte.gz"))) (File.ReadAllBytes(Path.Combine(root, "t10k-labels-idx1-ubyte.gz")))
            Expect.equal (FashionMnist.ContentHash(root, false)) (Convert.ToHexString(SHA256.HashData bytes).ToLowerInvariant()) "hash"
        }

        test "a missing folder names the file, the Debian package and the install command" {
            let root = Path.Combine(freshDir "idx", "absent")
            let e = Expect.throwsC (fun () -> FashionMnist.Load(root, true) |> ignore) id
            Expect.isTrue (e :? DataNotFoundException) $"DataNotFoundException, got {e.GetType()}"
            Expect.stringContains e.Message (Path.Combine(root, "train-labels-idx1-ubyte.gz")) "file"
            Expect.stringContains e.Message "`dataset-fashion-mnist`" "package"
            Expect.stringContains e.Message "sudo apt-get install dataset-fashion-mnist" "command"
        }

        test "a bad magic number is reported with the file name" {
            let root = syntheticRoot ()
            let images = Path.Combine(root, "t10k-images-idx3-ubyte.gz")
            writeIdx images 0x801u [ 3; 2; 2 ] (Array.zeroCreate 12)
            let e = Expect.throwsC (fun () -> FashionMnist.Load(root, false) |> ignore) id
            Expect.isTrue (e :? InvalidDataException) "InvalidDataException"
            Expect.stringContains e.Message images "names the file"
            Expect.stringContains e.Message "magic number 0x00000801" "says what was found"
        }

        test "a truncated image file is reported with the file name" {
            let root = syntheticRoot ()
            let images = Path.Combine(root, "t10k-images-idx3-ubyte.gz")
            writeIdx images 0x803u [ 3; 2; 2 ] (Array.zeroCreate 10)
            let e = Expect.throwsC (fun () -> FashionMnist.Load(root, false) |> ignore) id
            Expect.stringContains e.Message images "names the file"
            Expect.stringContains e.Message "truncated" "says truncated"
        }

        test "a file that is not gzip is reported with the file name" {
            let root = syntheticRoot ()
            let labels = Path.Combine(root, "t10k-labels-idx1-ubyte.gz")
            File.WriteAllText(labels, "this is not gzip data at all")
            let e = Expect.throwsC (fun () -> FashionMnist.Load(root, false) |> ignore) id
            Expect.stringContains e.Message labels "names the file"
        }

        test "image and label counts that differ are rejected" {
            let root = syntheticRoot ()
            writeIdx (Path.Combine(root, "t10k-labels-idx1-ubyte.gz")) 0x801u [ 2 ] [| 1uy; 0uy |]
            Expect.throwsT<InvalidDataException> (fun () -> FashionMnist.Load(root, false) |> ignore) "count mismatch"
        }
    ]

let private datasetTests =
    testList "ImageDataset" [
        test "Take and Select pick the right samples, in the given order" {
            use scope = torch.NewDisposeScope()
            use d = FashionMnist.Load(syntheticRoot (), false)
            use first = d.Take 2
            use picked = d.Select [| 2L; 0L; 2L |]
            Expect.equal (labelsOf first) [| 1L; 0L |] "Take"
            Expect.equal (labelsOf picked) [| 9L; 1L; 9L |] "Select"
            Expect.equal (picked.Images[0L].data<float32>().ToArray()) [| 1f; 1f; 0f; 0f |] "Select copies pixels of sample 2"
            Expect.equal (d.Take(100).Count) 3 "Take past the end keeps all"
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> d.Select [| 3L |] |> ignore) "index out of range"
        }

        test "the dataset owns its tensors: they outlive the scope they were made in" {
            let d =
                use scope = torch.NewDisposeScope()
                new ImageDataset(torch.zeros(2L, 1L, 2L, 2L), torch.tensor([| 3L; 4L |]), FashionMnist.ClassNames)
            use _d = d
            Expect.equal (labelsOf d) [| 3L; 4L |] "labels still readable"
        }

        test "wrong shapes and dtypes are rejected with the expected form in the message" {
            use scope = torch.NewDisposeScope()
            let e = Expect.throwsC (fun () -> new ImageDataset(torch.zeros(2L, 2L, 2L), torch.zeros(2L, dtype = torch.int64), FashionMnist.ClassNames) |> ignore) id
            Expect.stringContains e.Message "[N, C, H, W]" "images form"
            Expect.throwsT<ArgumentException> (fun () -> new ImageDataset(torch.zeros(2L, 1L, 2L, 2L), torch.zeros(3L, dtype = torch.int64), FashionMnist.ClassNames) |> ignore) "count mismatch"
        }
    ]

[<Tests>]
let tests = testList "Data.FashionMnist" [ realDataTests; syntheticTests; datasetTests ]
