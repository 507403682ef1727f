/// `bench --pytorch DIR`: what scripts/bench_pytorch.py needs to time the same methods hand-written in PyTorch on the
/// same weights and inputs: the network's state dict as torch.save writes it (weights.pth), the explained inputs
/// and targets (raw little-endian float32 and int64), this toolkit's saliency maps (grad of the target's softmax
/// probability, to check that both compute the same thing), and bench.json with the shapes and settings.
module Experiments.BenchPyTorch

open System.IO
open System.Text.Json
open TorchSharp
open TorchSharp.PyBridge
open Attribution.Methods
open Experiments.BenchSetup

let private writeRaw (path: string) (t: torch.Tensor) =
    use cpu = t.cpu().contiguous()
    let bytes = cpu.bytes
    File.WriteAllBytes(path, bytes.ToArray())

/// Writes the files into `dir` (created if needed).
let write (dir: string) (setup: Setup) (model: BenchModel) (samples: int) (batch: int) =
    Directory.CreateDirectory dir |> ignore
    setup.Network.save_py(Path.Combine(dir, "weights.pth")) |> ignore
    writeRaw (Path.Combine(dir, "inputs.f32")) setup.Inputs
    writeRaw (Path.Combine(dir, "targets.i64")) setup.Targets
    use saliency = Presets.Saliency(false).Explain(setup.Model, setup.Inputs, setup.Targets, ExplainOptions(OutputFunction.Probability, batch))
    writeRaw (Path.Combine(dir, "saliency.f32")) saliency.Maps
    let architecture, size = match model with FashionCnnModel _ -> "fashion_cnn", 28 | TorchVisionModel(name, size) -> name, size
    let meta =
        {| architecture = architecture
           size = size
           shape = setup.Inputs.shape
           samples = samples
           points_per_chunk = ExplainOptions(OutputFunction.Probability, batch).PointsPerChunk(setup.Inputs)
           inputs_per_call = 50
           threads = torch.get_num_threads () |}
    File.WriteAllText(Path.Combine(dir, "bench.json"), JsonSerializer.Serialize(meta, JsonSerializerOptions(WriteIndented = true)))
    printfn "PyTorch comparison files written to %s: run `python3 scripts/bench_pytorch.py %s`" dir dir
