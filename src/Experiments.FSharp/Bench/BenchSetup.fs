/// What the benchmark measures on: a model (the Fashion-MNIST CNN, trained or not, or a TorchVision architecture with
/// random weights) and real images at the model's input size (Fashion-MNIST, resized and repeated to three channels
/// for natural-image models), with the context the methods need (class covariances, reference images).
module Experiments.BenchSetup

open System.Collections.Generic
open TorchSharp
open Attribution.Methods
open Attribution.Models
open Attribution.Runtime
open Attribution.Sampling
open Experiments.Building

type private Tensor = torch.Tensor
type private Device = torch.Device

/// The model a bench measures.
type BenchModel =
    /// The default 28x28 CNN; 0 epochs keeps its random initialisation.
    | FashionCnnModel of epochs: int
    /// A TorchVision architecture at size x size x 3, random weights, 10 classes.
    | TorchVisionModel of name: string * size: int

/// How the benchmark's covariance sampler holds Sigma: the paper's shared matrix where it fits, low rank otherwise.
type CovarianceChoice =
    | SharedCovariance
    | LowRankCovariance of rank: int

/// Everything one bench run explains with.
type Setup =
    { Model: torch.nn.Module<Tensor, Tensor>
      /// The network itself, without the wrapper that gives layer methods its stages (its state dict has the
      /// architecture's own names, as PyTorch's has).
      Network: torch.nn.Module<Tensor, Tensor>
      Inputs: Tensor
      Targets: Tensor
      Context: MethodContext
      Covariance: CovarianceChoice
      /// The stage layer methods read (IBA, InputIBA, Grad-CAM).
      Stage: string
      /// One line on the model, its input size and its weights.
      Describe: string
      Disposables: System.IDisposable list }

let describeModel =
    function
    | FashionCnnModel 0 -> "fashion_cnn (random weights)"
    | FashionCnnModel epochs -> $"fashion_cnn ({epochs} epochs)"
    | TorchVisionModel(name, size) -> $"torchvision {name} at 3x{size}x{size} (random weights)"

/// Fashion-MNIST images [N, 1, 28, 28] as a natural-image model takes them: bilinear to size x size, three channels.
let private resized (size: int) (images: Tensor) =
    use scope = torch.NewDisposeScope()
    let up = torch.nn.functional.interpolate(images, size = [| int64 size; int64 size |], mode = torch.InterpolationMode.Bilinear, align_corners = false)
    up.expand(-1L, 3L, -1L, -1L).contiguous().MoveToOuterDisposeScope()

/// Training images balanced over the classes, at most `perClass` of each (fewer at 224 pixels, where each is 600 kB),
/// in a seeded random order, so that the first n of them (the references of a method) are a random sample.
let private balancedRows (labels: Tensor) (perClass: int) =
    let all = labels.data<int64>().ToArray()
    let rows = [| for k in 0L .. 9L do yield! all |> Array.indexed |> Array.filter (fun (_, l) -> l = k) |> Array.truncate perClass |> Array.map (fst >> int64) |]
    use g = new torch.Generator(uint64 (Seeds.Derive(0L, "bench-references")), torch.CPU)
    use order = torch.randperm(int64 rows.Length, generator = g)
    order.data<int64>().ToArray() |> Array.map (fun i -> rows.[int i])

/// Builds the model (training the CNN when asked, with its figures printed), the explained inputs and the context.
let create (model: BenchModel) (inputs: int) (device: Device) (say: string -> unit) : Setup =
    let train = Attribution.Data.FashionMnist.Load(null, true)
    let test = Attribution.Data.FashionMnist.Load(null, false)
    torch.manual_seed (Seeds.Derive(0L, "bench-init")) |> ignore
    let network, raw, inputsOf, referenceRows, covariance, stage =
        match model with
        | FashionCnnModel epochs ->
            let cnn = new FashionCnn()
            if epochs > 0 then
                let report = Training.Train(cnn, train, TrainingOptions(epochs, 128, 1e-3, 0L), device)
                let accuracy = Training.Accuracy(cnn, test, device)
                let met = accuracy >= 0.88 && report.Seconds <= 180.0
                say (sprintf "training: %d epochs in %.1f s, test accuracy %.2f%% (target: >= 88%% within 180 s on 2 cores: %s)"
                         epochs report.Seconds (100.0 * accuracy) (if met then "met" else "NOT met"))
            let cnn = cnn.``to``(device)
            (cnn :> torch.nn.Module<Tensor, Tensor>), (cnn :> torch.nn.Module<Tensor, Tensor>), id, balancedRows train.Labels 6000, SharedCovariance, "conv2"
        | TorchVisionModel(name, size) ->
            let network = TorchVisionModels.Create(name, 10)
            network.``to``(device) |> ignore
            let layered = new ModuleLayers(network, network, [| 3L; int64 size; int64 size |])
            (layered :> torch.nn.Module<Tensor, Tensor>), network, resized size, balancedRows train.Labels 20, LowRankCovariance 32, "layer3"
    network.eval()
    let referenceIndex = torch.tensor referenceRows
    let trainImages = inputsOf (train.Images.index_select(0L, referenceIndex))
    let trainLabels = train.Labels.index_select(0L, referenceIndex)
    let x = (inputsOf (test.Images.narrow(0L, 0L, int64 inputs))).``to``(device)
    let y = test.Labels.narrow(0L, 0L, int64 inputs).``to``(device)
    let covariances = Dictionary<float, ClassCovariance>()
    let structured = Dictionary<string, ICovarianceModel>()
    let clock = System.Diagnostics.Stopwatch.StartNew()
    match covariance with
    | SharedCovariance ->
        covariances.[1e-5] <- ClassCovariance.Estimate(trainImages, trainLabels, 10, 1e-5, device)
        say (sprintf "class covariances (10 x %d x %d, shared across channels, Cholesky) from %d images: %.2f s"
                 (trainImages.shape.[2] * trainImages.shape.[3]) (trainImages.shape.[2] * trainImages.shape.[3]) trainImages.shape.[0] clock.Elapsed.TotalSeconds)
    | LowRankCovariance rank ->
        let m = CovarianceModels.Estimate(trainImages, trainLabels, 10, CovarianceStructure.LowRankPlusDiagonal(rank), 1e-5, device)
        structured.[$"{m.Structure.Name}/{1e-5}"] <- m
        say (sprintf "class covariances (10 classes, low rank %d plus diagonal over D = %d, %.0f MB) from %d images: %.2f s"
                 rank m.Features (float (m.FloatsPerClass * m.Classes * 4L) / 1e6) trainImages.shape.[0] clock.Elapsed.TotalSeconds)
    let structuredOf (jitter: float) (s: CovarianceStructure) =
        match structured.TryGetValue $"{s.Name}/{jitter}" with
        | true, m -> m
        | _ -> failwith $"the bench estimated no covariance of structure {s.Name} with jitter {jitter}"
    let references (n: int) =
        let rows = min n (int trainImages.shape.[0])
        trainImages.narrow(0L, 0L, int64 rows).``to``(device)
    { Model = network
      Network = raw
      Inputs = x
      Targets = y
      Context = { Covariances = covariances; References = references; Model = network; Structured = structuredOf }
      Covariance = covariance
      Stage = stage
      Describe = describeModel model
      Disposables = [ yield! covariances.Values |> Seq.cast<System.IDisposable>; yield! structured.Values |> Seq.cast<System.IDisposable> ] }

/// The setup in a precision (as explain.precision): bf16 converts the model in place to bfloat16 behind float32 casts
/// (ReducedPrecisionModel), so that methods and their floors both run in it (the bench then times only methods that
/// need outputs and input gradients); on CUDA, tf32 and fp32 set the TF32 switches for products and convolutions.
let withPrecision (precision: Precision) (device: Device) (setup: Setup) =
    Running.followPrecisionOnCuda precision device
    match precision with
    | Fp32 -> setup
    | Tf32 -> { setup with Describe = setup.Describe + ", tf32" }
    | Bf16 ->
        setup.Model.``to``(torch.ScalarType.BFloat16) |> ignore
        { setup with Model = new ReducedPrecisionModel(setup.Model, torch.ScalarType.BFloat16); Describe = setup.Describe + ", bf16" }
