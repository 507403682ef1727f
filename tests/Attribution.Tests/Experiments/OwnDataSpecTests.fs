/// A user's data as they keep it, from a spec: a folder of PNGs in torchvision's ImageFolder layout (written here
/// from the fixture's data file, so the fixture model must classify them as it classifies the file) and a JSON Lines
/// file of labelled texts; their misfits (an empty folder, mixed sizes, a broken line) are located spec errors.
module OwnDataSpecTests

open System
open System.IO
open System.Text.Json
open Expecto
open SkiaSharp
open TorchSharp
open Experiments
open OwnModelTests

/// Writes uint8 images [N, 3, H, W] as PNGs root/<class>/<index>.png, zero-padded so that file order is row order.
let private writePngs (root: string) (images: torch.Tensor) (labels: int64[]) (classes: string list) =
    let bytes = (images * 255.0f).round().``to``(torch.uint8).contiguous()
    let n, h, w = int bytes.shape.[0], int bytes.shape.[2], int bytes.shape.[3]
    let data = bytes.data<byte>().ToArray()
    for i in 0 .. n - 1 do
        let folder = Path.Combine(root, classes.[int labels.[i]])
        Directory.CreateDirectory folder |> ignore
        use bitmap = new SKBitmap(SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul))
        for y in 0 .. h - 1 do
            for x in 0 .. w - 1 do
                let at c = data.[((i * 3 + c) * h + y) * w + x]
                bitmap.SetPixel(x, y, SKColor(at 0, at 1, at 2, 255uy))
        use png = bitmap.Encode(SKEncodedImageFormat.Png, 100)
        File.WriteAllBytes(Path.Combine(folder, $"{i:D4}.png"), png.ToArray())

/// The fixture's data file as an ImageFolder with train/ and test/.
let private fixtureFolder () =
    let root = TestFiles.freshDir "own-images"
    let d = Attribution.Data.TensorFile.Load(fixture "own_data.safetensors")
    let classes = List.ofSeq d.Test.ClassNames
    writePngs (Path.Combine(root, "train")) d.Train.Images (d.Train.Labels.data<int64>().ToArray()) classes
    writePngs (Path.Combine(root, "test")) d.Test.Images (d.Test.Labels.data<int64>().ToArray()) classes
    root, d

/// A spec run; the run folder of the spec named `own`.
let private run (name: string) (yaml: string) =
    let code, stderr, runs = SpecRuns.run name yaml
    code, stderr, Path.Combine(runs, "own", RunFolder.LatestName)

let private errorsOf = SpecRuns.errorsOf

let private scripted = fixture "tiny_cnn.pt"

let private imageSpec (images: string) =
    $"name: own\ndata:\n  images: {images}\n  explain: 12\nmodel:\n  torchscript: {scripted}\nmethods:\n  - method: saliency\nmetrics:\n  - metric: insertion_deletion\n    pixels_per_step: 64\n"

[<Tests>]
let tests =
    testSequenced <| testList "own data from a spec" [
        test "PNGs in an ImageFolder hold the data file's pixels exactly, in torchvision's class order" {
            let root, d = fixtureFolder ()
            use loaded = Attribution.Data.ImageFolder.Load(root, Attribution.Data.ImageFolderOptions())
            // torchvision sorts the class folders by name; each class keeps the file's row order.
            let sorted = d.Test.ClassNames |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b)) |> List.ofSeq
            Expect.equal (List.ofSeq loaded.Test.ClassNames) sorted "class order"
            for k, name in List.indexed sorted do
                let original = d.Test.ClassNames |> Seq.findIndex ((=) name)
                use mine = d.Test.Images.index_select(0L, d.Test.Labels.eq(torch.tensor(int64 original)).nonzero().squeeze(1L))
                use theirs = loaded.Test.Images.index_select(0L, loaded.Test.Labels.eq(torch.tensor(int64 k)).nonzero().squeeze(1L))
                Expect.isTrue (mine.eq(theirs).all().item<bool>()) $"class {name}: the same pixels"
        }

        test "a TorchScript model on an ImageFolder runs from YAML and, with its class order stated, classifies the PNGs as the file" {
            let root, d = fixtureFolder ()
            // The model was trained with the file's order (top_left = 0, ...); the folders sort otherwise.
            let stated = "[" + String.Join(", ", d.Test.ClassNames) + "]"
            let yaml = (imageSpec root).Replace($"images: {root}", $"images: {{ path: {root}, classes: {stated} }}")
            let code, stderr, output = run "own-images-run" yaml
            Expect.equal code ExitCode.Ok stderr
            use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")))
            Expect.equal (doc.RootElement.GetProperty("Model").GetProperty("TestAccuracy").GetDouble()) 1.0 "as on the data file"
            Expect.isTrue (File.Exists(Path.Combine(output, "heatmaps-absolute.png"))) "heatmaps"
            // Without the stated order the labels are the sorted folders': the model is right only where orders agree.
            let code, stderr, output = run "own-images-sorted" (imageSpec root)
            Expect.equal code ExitCode.Ok stderr
            use sorted = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")))
            Expect.isLessThan (sorted.RootElement.GetProperty("Model").GetProperty("TestAccuracy").GetDouble()) 1.0 "another order, other labels"
            let wrong = errorsOf ((imageSpec root).Replace($"images: {root}", $"images: {{ path: {root}, classes: [top_left, top_rigth, bottom_left, bottom_right] }}"))
            Expect.exists wrong (fun (p, m) -> p = "data.images.classes" && m.Contains "top_rigth") $"%A{wrong}"
        }

        test "an image folder is decoded once into the cache and mapped from there; cache verify and gc see the decoded copy" {
            let root, _ = fixtureFolder ()
            let work = TestFiles.freshDir "own-images-decoded"
            let cache = Path.Combine(work, "cache")
            let specFile = Path.Combine(work, "own.yaml")
            File.WriteAllText(specFile, imageSpec root)
            let cli (args: string list) =
                Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", cache)
                // what the command prints (stdout) and says (stderr), together
                let writer = new StringWriter()
                let out, error = Console.Out, Console.Error
                Console.SetOut writer
                Console.SetError writer
                try
                    let code = Cli.run (Array.ofList args)
                    code, writer.ToString()
                finally
                    Console.SetOut out
                    Console.SetError error
                    Environment.SetEnvironmentVariable("ATTRIBUTION_CACHE", null)
            let metricsOf () =
                let folder = Path.Combine(work, "runs", "own", RunFolder.LatestName)
                use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "metrics.json")))
                [ for p in doc.RootElement.EnumerateObject() do if p.Name <> "Timings" then yield p.Name + "=" + p.Value.GetRawText() ]
            let runOnce () =
                let code, said = cli [ "run"; specFile; "--output"; Path.Combine(work, "runs") ]
                Expect.equal code ExitCode.Ok said
                said
            let first = runOnce ()
            let clean = metricsOf ()
            Expect.stringContains first "decoding 24 test images" "the first run decodes the test images"
            let decoded = Directory.GetDirectories(Path.Combine(cache, "decoded-images")) |> Array.exactlyOne
            // the spec changes nothing of the images but what is explained: the same decoded copy, nothing decoded
            File.WriteAllText(specFile, (imageSpec root).Replace("explain: 12", "explain: 10"))
            let second = runOnce ()
            Expect.isFalse (second.Contains "decoding") $"the second run maps the decoded copy:\n{second}"
            Expect.sequenceEqual (Directory.GetDirectories(Path.Combine(cache, "decoded-images"))) [| decoded |] "one decoded copy"
            File.WriteAllText(specFile, imageSpec root)
            // a flipped bit in the decoded pixels: verify names it (exit 3), --repair removes it, a run decodes again
            let train = Path.Combine(decoded, "train.f32")
            let bytes = File.ReadAllBytes train
            bytes.[bytes.Length / 2] <- bytes.[bytes.Length / 2] ^^^ 0x40uy
            File.WriteAllBytes(train, bytes)
            let code, said = cli [ "cache"; "verify" ]
            Expect.equal code ExitCode.BadCache said
            Expect.stringContains said "train.f32" "the damaged file is named"
            let code, said = cli [ "cache"; "verify"; "--repair" ]
            Expect.equal code ExitCode.Ok said
            Expect.isFalse (Directory.Exists decoded) "removed"
            let third = runOnce ()
            Expect.stringContains third "decoding" "decoded again"
            Expect.equal (metricsOf ()) clean "the same results as the first run"
            // gc keeps the decoded copy a given spec reads, and removes it when no given spec reads it
            let code, said = cli [ "cache"; "gc"; specFile ]
            Expect.equal code ExitCode.Ok said
            Expect.isTrue (Directory.Exists decoded) "the spec's images stay"
            let other = Path.Combine(work, "other.yaml")
            File.WriteAllText(other, "name: other\ndata: { dataset: fashion_mnist, explain: 5, train_limit: 100 }\nmodel: { architecture: fashion_cnn, epochs: 1 }\nmethods: [ { method: saliency } ]\n")
            let code, said = cli [ "cache"; "gc"; other ]
            Expect.equal code ExitCode.Ok said
            Expect.isFalse (Directory.Exists decoded) "images no given spec reads are removed"
        }

        test "resize and center_crop read and write back; the input shape follows torchvision's rules" {
            let root, _ = fixtureFolder ()
            let yaml = (imageSpec root).Replace($"images: {root}", $"images: {{ path: {root}, resize: 40, center_crop: [32, 32] }}")
            match Validate.text "own.yaml" yaml with
            | Error e -> failtest (SpecError.formatAll e)
            | Ok s ->
                Expect.equal s.Data.Dataset (ImageFolder { Path = root; Resize = Some [ 40 ]; CenterCrop = Some [ 32; 32 ]; Grayscale = false; Classes = None }) "decoded"
                Expect.equal (Yaml.parseText "r.yaml" (Yaml.render s)) (Ok s) "render then parse"
                Expect.equal (Domain.imageShape s.Data.Dataset) (Some(3, 32, 32)) "resized to 40 then cropped to 32"
            let gray = (imageSpec root).Replace($"images: {root}", $"images: {{ path: {root}, resize: [20, 24], channels: grayscale }}")
            match Validate.text "own.yaml" gray with
            | Ok s -> Expect.equal (Domain.imageShape s.Data.Dataset) (Some(1, 20, 24)) "[height, width], one channel"
            | Error e -> Expect.exists e (fun e -> e.Path = "model.torchscript" || e.Path.StartsWith "methods") (SpecError.formatAll e)
            let three = errorsOf ((imageSpec root).Replace($"images: {root}", $"images: {{ path: {root}, resize: [20, 24, 3] }}"))
            Expect.exists three (fun (p, m) -> p = "data.images.resize" && m.Contains "[height, width]") $"%A{three}"
            let channels = errorsOf ((imageSpec root).Replace($"images: {root}", $"images: {{ path: {root}, channels: bgr }}"))
            Expect.exists channels (fun (p, _) -> p = "data.images.channels") $"%A{channels}"
        }

        test "a data file with masks instead of boxes gives EHR from the masks: masks equal to the boxes give the boxes' EHR" {
            let root = TestFiles.freshDir "own-masks"
            let full = Attribution.Models.Safetensors.Load(fixture "own_data.safetensors")
            let boxes = full.["test_boxes"].data<int64>().ToArray()
            let n = int full.["test_boxes"].shape.[0]
            let masks = TorchSharp.torch.zeros([| int64 n; 32L; 32L |], dtype = TorchSharp.torch.uint8)
            for i in 0 .. n - 1 do
                let top, left, height, width = boxes.[4 * i], boxes.[4 * i + 1], boxes.[4 * i + 2], boxes.[4 * i + 3]
                masks.[int64 i].narrow(0L, top, height).narrow(1L, left, width).fill_(TorchSharp.Scalar.op_Implicit 1uy) |> ignore
            let masked = Path.Combine(root, "masked.safetensors")
            let tensors = [ for kv in full do if kv.Key <> "test_boxes" then yield kv.Key, kv.Value ] @ [ "test_masks", masks ]
            Attribution.Models.Safetensors.Save(masked, readOnlyDict tensors, readOnlyDict [ "classes", "top_left,top_right,bottom_left,bottom_right" ])
            let yamlOf (data: string) =
                $"name: own\ndata:\n  tensors: {data}\n  explain: 12\nmodel:\n  torchscript: {scripted}\nmethods:\n  - method: saliency\n  - method: integrated_gradients\n    steps: 8\nmetrics:\n  - metric: effective_heat_ratio\n"
            let ehrs (data: string) =
                let code, stderr, output = run "own-masks-run" (yamlOf data)
                Expect.equal code ExitCode.Ok stderr
                use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")))
                [ for m in doc.RootElement.GetProperty("Metrics").EnumerateArray() -> m.GetProperty("Method").GetString(), m.GetProperty("Scalars").[0].GetProperty("Value").GetDouble() ]
            Expect.equal (ehrs masked) (ehrs (fixture "own_data.safetensors")) "the same EHR per method"
        }

        test "masks of the wrong shape are refused naming the file and the shape wanted" {
            let root = TestFiles.freshDir "own-bad-masks"
            let full = Attribution.Models.Safetensors.Load(fixture "own_data.safetensors")
            let file = Path.Combine(root, "bad.safetensors")
            let tensors = [ for kv in full do if kv.Key <> "test_boxes" then yield kv.Key, kv.Value ] @ [ "test_masks", TorchSharp.torch.zeros([| 24L; 16L; 16L |]) ]
            Attribution.Models.Safetensors.Save(file, readOnlyDict tensors)
            let e = Expect.throwsC (fun () -> Attribution.Data.TensorFile.Load file |> ignore) id
            Expect.stringContains e.Message "test_masks must be [24, 32, 32]" e.Message
            Expect.stringContains e.Message file "the file named"
        }

        test "an empty folder and images of mixed sizes without a resize are located errors naming the folder or files" {
            let empty = TestFiles.freshDir "own-images-empty"
            let e = errorsOf (imageSpec empty)
            Expect.exists e (fun (p, m) -> p = "data.images" && m.Contains "layout") $"%A{e}"
            let root, _ = fixtureFolder ()
            let odd = Path.Combine(root, "test", "top_left", "9999.png")
            do
                use bitmap = new SKBitmap(SKImageInfo(20, 30, SKColorType.Rgba8888, SKAlphaType.Unpremul))
                use png = bitmap.Encode(SKEncodedImageFormat.Png, 100)
                File.WriteAllBytes(odd, png.ToArray())
            let mixed = errorsOf (imageSpec root)
            Expect.exists mixed (fun (p, m) -> p = "data.images" && m.Contains "9999.png" && m.Contains "resize") $"%A{mixed}"
            let missing =
                match Validate.text "own.yaml" (imageSpec (Path.Combine(root, "nowhere"))) with
                | Ok s -> Validate.files s |> List.map (fun e -> e.Path, e.Message)
                | Error e -> e |> List.map (fun e -> e.Path, e.Message)
            Expect.exists missing (fun (p, m) -> p = "data.images" && m.Contains "no such folder") $"%A{missing}"
        }

        test "a JSON Lines file of labelled texts trains a text model and is explained from YAML; a broken line is located" {
            let root = TestFiles.freshDir "own-text"
            let file = Path.Combine(root, "reviews.jsonl")
            let rng = Random(7)
            let good = [| "lovely"; "great"; "superb"; "wonderful"; "fine" |]
            let bad = [| "awful"; "dreadful"; "poor"; "terrible"; "dull" |]
            let filler = [| "the"; "film"; "was"; "quite"; "and"; "plot"; "acting"; "music"; "really"; "story" |]
            let line label =
                let words = [| for _ in 1 .. 12 -> filler.[rng.Next filler.Length] |]
                words.[rng.Next words.Length] <- (if label = "positive" then good else bad).[rng.Next 5]
                JsonSerializer.Serialize(dict [ "text", String.Join(" ", words); "label", label ])
            File.WriteAllLines(file, [| for i in 0 .. 399 -> line (if i % 2 = 0 then "positive" else "negative") |])
            let yaml = $"name: own\ndata:\n  text: {file}\n  explain: 10\nmodel:\n  architecture: text_cnn\n  epochs: 8\n  batch_size: 32\n  learning_rate: 0.01\nmethods:\n  - method: saliency\n  - method: integrated_gradients\n    steps: 8\nmetrics:\n  - metric: rank_agreement\n"
            let code, stderr, output = run "own-text-run" yaml
            Expect.equal code ExitCode.Ok stderr
            use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")))
            Expect.isGreaterThan (doc.RootElement.GetProperty("Model").GetProperty("TestAccuracy").GetDouble()) 0.8 "one word decides the class: learnt"
            File.AppendAllText(file, "{\"text\": \"unfinished\n")
            let broken = errorsOf yaml
            Expect.exists broken (fun (p, m) -> p = "data.text" && m.Contains "401") $"%A{broken}"
        }
    ]
