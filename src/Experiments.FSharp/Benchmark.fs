/// `attribution bench`: prints the figures behind the performance targets (training time and accuracy of
/// the Fashion-MNIST model; throughput of each method), measured fresh, never from the cache.
module Experiments.Benchmark

open System.Diagnostics
open TorchSharp
open Attribution.Data
open Attribution.Methods
open Attribution.Models
open Attribution.Runtime
open Attribution.Sampling

/// Trains the default model `epochs` epochs, then times each method on `inputs` test images.
let run (device: torch.Device) (epochs: int) (inputs: int) (samples: int) =
    printfn "device: %s" (TorchRuntime.Describe device)
    let train = Attribution.Data.FashionMnist.Load(null, true)
    let test = Attribution.Data.FashionMnist.Load(null, false)
    torch.manual_seed (Seeds.Derive(0L, "bench-init")) |> ignore
    let model = new FashionCnn()
    let report = Training.Train(model, train, TrainingOptions(epochs, 128, 1e-3, 0L), device)
    let accuracy = Training.Accuracy(model, test, device)
    let met = accuracy >= 0.88 && report.Seconds <= 180.0
    printfn "training: %d epochs in %.1f s, test accuracy %.2f%% (target: >= 88%% within 180 s on 2 cores: %s)"
        epochs report.Seconds (100.0 * accuracy) (if met then "met" else "NOT met")
    let clock = Stopwatch.StartNew()
    use covariance = ClassCovariance.Estimate(train.Images, train.Labels, 10, 1e-5, device)
    printfn "class covariances (10 x 784 x 784, Cholesky): %.2f s" clock.Elapsed.TotalSeconds
    let x = test.Images.narrow(0L, 0L, int64 inputs).``to``(device)
    let y = test.Labels.narrow(0L, 0L, int64 inputs).``to``(device)
    let methods : (string * IAttributionMethod * int) list =
        [ "saliency", Presets.Saliency(), 1
          "integrated_gradients", Presets.IntegratedGradients(samples), samples
          "smooth_grad", Presets.SmoothGrad(samples = samples), samples
          "var_grad", Presets.VarGrad(samples = samples), samples
          "functional_information (nu)", Presets.FunctionalInformation(IsotropicGaussian(), samples), samples
          "functional_information (Sigma)", Presets.FunctionalInformation(CovarianceGaussian(covariance), samples), samples ]
    for name, m, points in methods do
        use warm = m.Explain(model, x.narrow(0L, 0L, 2L), y.narrow(0L, 0L, 2L), ExplainOptions())
        let clock = Stopwatch.StartNew()
        use e = m.Explain(model, x, y, ExplainOptions(BatchSize = 512))
        let seconds = clock.Elapsed.TotalSeconds
        printfn "%-32s %d inputs x %d points: %7.2f s, %9.0f points/s" name inputs points seconds (float (inputs * points) / seconds)
