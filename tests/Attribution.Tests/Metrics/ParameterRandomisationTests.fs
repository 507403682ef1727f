/// SSIM on hand-checked examples and the cascading parameter-randomisation sanity check.
module ParameterRandomisationTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Metrics
open Attribution.Methods
open Attribution.Models

let private c1 = (0.01 * 1.0) ** 2.0
let private c2 = (0.03 * 1.0) ** 2.0

/// The 11x11 Gaussian window of sigma 1.5, computed here independently of the library.
let private window =
    let k = Array.init 11 (fun i -> exp (-(float (i - 5) ** 2.0) / (2.0 * 1.5 * 1.5)))
    let s = Array.sum k
    Array2D.init 11 11 (fun i j -> k.[i] * k.[j] / (s * s))

[<Tests>]
let tests =
    testList "parameter randomisation" [
        test "SSIM(x, x) = 1" {
            use scope = NewDisposeScope()
            let x = TestModels.uniform 46 [| 3L; 2L; 20L; 20L |]
            for v in Ssim.Mean(x, x.clone()) do Expect.floatClose Accuracy.high v 1.0 "identical images"
        }

        test "SSIM of two constant 11x11 images a and a + c is the luminance term (2a(a+c) + C1) / (a^2 + (a+c)^2 + C1)" {
            use scope = NewDisposeScope()
            let x = full(1L, 1L, 11L, 11L, 0.2f)
            let y = full(1L, 1L, 11L, 11L, 0.5f)
            let expected = (2.0 * 0.2 * 0.5 + c1) / (0.04 + 0.25 + c1)   // 0.68976...
            Expect.sequenceEqual ((Ssim.Map(x, y)).shape) [| 1L; 1L; 1L; 1L |] "one window position"
            Expect.floatClose Accuracy.medium (Ssim.Mean(x, y).[0]) expected "offset"
        }

        test "SSIM of a constant image and the same plus a checkerboard: luminance times C2 / (sigma_y^2 + C2)" {
            use scope = NewDisposeScope()
            let a, delta = 0.4, 0.1
            let yv = Array2D.init 11 11 (fun i j -> a + (if (i + j) % 2 = 0 then delta else -delta))
            let x = full(1L, 1L, 11L, 11L, a, dtype = ScalarType.Float64)
            let y = tensor(yv |> Seq.cast<float> |> Array.ofSeq).view(1L, 1L, 11L, 11L)
            let mutable mu = 0.0
            let mutable m2 = 0.0
            for i in 0 .. 10 do
                for j in 0 .. 10 do
                    mu <- mu + window.[i, j] * yv.[i, j]
                    m2 <- m2 + window.[i, j] * yv.[i, j] * yv.[i, j]
            let var = m2 - mu * mu     // sigma_xy = 0 since x is constant
            let expected = (2.0 * a * mu + c1) / (a * a + mu * mu + c1) * c2 / (var + c2)
            Expect.floatClose Accuracy.medium (Ssim.Mean(x, y).[0]) expected "noise"
            Expect.isTrue (expected < 0.1) $"structure destroyed: {expected}"
        }

        test "cascade: the caller's model is untouched, a saliency map changes (SSIM < 1), a model-blind map does not" {
            use scope = NewDisposeScope()
            torch.manual_seed(5L) |> ignore
            let model = new FashionCnn()
            model.eval() |> ignore
            let before = model.state_dict() |> Seq.map (fun kv -> kv.Key, kv.Value.clone()) |> Map.ofSeq
            use g = new Generator(3UL, CPU)
            let x = rand([| 4L; 1L; 28L; 28L |], generator = g)
            let targets = zeros(4L, dtype = ScalarType.Int64)
            let check = ParameterRandomisation()
            let stages = check.Run(model, (fun () -> new FashionCnn()), Presets.Saliency(), x, targets, ExplainOptions(), 1L)
            Expect.sequenceEqual (stages |> Seq.map (fun s -> s.Stage)) [ "fc3"; "fc2"; "fc1"; "conv2"; "conv1" ] "output first"
            Expect.sequenceEqual (stages |> Seq.last).Randomised [ "fc3"; "fc2"; "fc1"; "conv2"; "conv1" ] "cumulative"
            let last = stages |> Seq.last
            Expect.isTrue (last.MeanSsim < 0.9) $"SSIM after randomising everything: {last.MeanSsim}"
            for KeyValue(name, value) in model.state_dict() do
                Expect.isTrue (value.allclose(before.[name], 0.0, 0.0)) $"{name} unchanged"
            let blind = check.Run(model, (fun () -> new FashionCnn()), (fun (_: FashionCnn) -> x.clone()), 1L)
            for s in blind do
                Expect.floatClose Accuracy.high s.MeanSsim 1.0 $"model-blind map at {s.Stage}"
                Expect.floatClose Accuracy.high s.MeanSpearman 1.0 $"model-blind ranks at {s.Stage}"
        }
    ]
