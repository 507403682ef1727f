/// A user's own model and data, made with PyTorch (tests/fixtures/make_fixtures.py, committed): the toolkit's maps of
/// the TorchScript export equal PyTorch's own gradients and Integrated Gradients, and the data file loads as images.
module OwnModelTests

open System
open System.IO
open Expecto
open TorchSharp
open Attribution.Methods
open Attribution.Models

/// The repository's tests/fixtures folder, found from the test binary's folder.
let fixtures = Path.Combine(TestProcesses.repoRoot, "tests", "fixtures")

let fixture (name: string) = Path.Combine(fixtures, name)

/// |a - b| <= 1e-5 * max|b| elementwise: relative to the size of the reference map.
/// The largest difference at most `tolerance` of the reference's largest magnitude.
let closeRelativeTo (tolerance: float) (actual: torch.Tensor) (reference: torch.Tensor) (what: string) =
    let scale = reference.abs().max().``to``(torch.ScalarType.Float64).item<float>()
    let worst = (actual.``to``(torch.ScalarType.Float64) - reference.``to``(torch.ScalarType.Float64)).abs().max().item<float>()
    Expect.isLessThanOrEqual worst (tolerance * scale) $"{what}: largest difference {worst:E2} against a map of size {scale:E2}"

/// Float32 results against float32 references: to 1e-5 of the reference's size.
let closeRelative (actual: torch.Tensor) (reference: torch.Tensor) (what: string) = closeRelativeTo 1e-5 actual reference what

[<Tests>]
let tests =
    testList "own model" [
        test "the data file loads as 3-channel 32x32 images with labels, class names and boxes" {
            let data = Attribution.Data.TensorFile.Load(fixture "own_data.safetensors")
            let train, test, boxes = data.Train, data.Test, data.Boxes
            Expect.equal train.Images.shape [| 48L; 3L; 32L; 32L |] "train"
            Expect.equal test.Images.shape [| 24L; 3L; 32L; 32L |] "test"
            Expect.equal (List.ofSeq test.ClassNames) [ "top_left"; "top_right"; "bottom_left"; "bottom_right" ] "class names in label order"
            Expect.isTrue (test.Images.min().item<float32>() >= 0.0f && test.Images.max().item<float32>() <= 1.0f) "uint8 scaled to [0, 1]"
            Expect.equal (boxes |> nonNull |> Array.length) 24 "a box per test image"
        }

        test "the TorchScript export's saliency and Integrated Gradients equal PyTorch's, in float64 to 1e-9 of the map's size" {
            use scope = torch.NewDisposeScope()
            use model = TorchScriptModel.Load(fixture "tiny_cnn.pt")
            model.eval() |> ignore
            model.``to``(torch.ScalarType.Float64) |> ignore
            let references = Safetensors.Load(fixture "references.safetensors")
            // blends of two test images where the softmax is not saturated, explained in float64 as the references were
            // (make_fixtures.py says why): the methods' mathematics compared, not two libraries' float32 kernels
            let x = references.["inputs"].``to``(torch.ScalarType.Float64)
            let targets = references.["targets"]
            use saliency = Presets.Saliency(false).Explain(model, x, targets, ExplainOptions())
            closeRelativeTo 1e-9 saliency.Maps references.["saliency"] "saliency"
            use ig = Presets.IntegratedGradients(32, Attribution.Sampling.IntegrationRule.GaussLegendre).Explain(model, x, targets, ExplainOptions())
            closeRelativeTo 1e-9 ig.Maps references.["integrated_gradients"] "integrated gradients"
        }

        test "Integrated Gradients reports its completeness gap |sum - (f(x) - f(0))|, which shrinks as the quadrature refines" {
            use scope = torch.NewDisposeScope()
            use model = TorchScriptModel.Load(fixture "tiny_cnn.pt")
            model.eval() |> ignore
            let test = Attribution.Data.TensorFile.Load(fixture "own_data.safetensors").Test
            let x = test.Images.narrow(0L, 0L, 8L)
            let targets = test.Labels.narrow(0L, 0L, 8L)
            let gap steps =
                use e = Presets.IntegratedGradients(steps, Attribution.Sampling.IntegrationRule.RiemannLeft).Explain(model, x, targets, ExplainOptions())
                let reported = e.Diagnostics.["completeness_gap"].clone()
                // the gap, recomputed here from its definition
                use _ = torch.no_grad()
                let f (z: torch.Tensor) = torch.nn.functional.softmax(model.call(z).``to``(torch.float64), 1L).gather(1L, targets.unsqueeze(1L)).squeeze(1L)
                let direct = (e.Maps.``to``(torch.float64).reshape(8L, -1L).sum(1L) - (f x - f (torch.zeros_like(x)))).abs()
                closeRelative (reported.``to``(torch.float32)) (direct.``to``(torch.float32)) $"the reported gap at {steps} steps"
                reported.max().item<float>()
            let coarse, fine = gap 4, gap 256
            Expect.isLessThan fine coarse $"256 left Riemann steps ({fine:E2}) close more of the gap than 4 ({coarse:E2})"
        }

        test "sampling methods report their split-half agreement: 1 where every sample's gradient is the same, rising with samples" {
            use scope = torch.NewDisposeScope()
            let test = Attribution.Data.TensorFile.Load(fixture "own_data.safetensors").Test
            let x = test.Images.narrow(0L, 0L, 8L)
            let targets = test.Labels.narrow(0L, 0L, 8L)
            let splitHalf (model: torch.nn.Module<torch.Tensor, torch.Tensor>) samples output =
                use e = Presets.SmoothGrad(Attribution.Sampling.IsotropicGaussian(0.3), samples).Explain(model, x, targets, ExplainOptions(Output = output, BatchSize = 64))
                e.Diagnostics.["split_half_spearman"].clone()
            // A linear model's logit has the same gradient at every point: both halves give the same map.
            torch.manual_seed(5L) |> ignore
            use linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3L * 32L * 32L, 4L))
            let exact = splitHalf linear 8 OutputFunction.Logit
            Expect.isTrue (exact.eq(torch.tensor(1.0, dtype = torch.float64)).all().item<bool>()) $"split-half of a linear logit: {exact}"
            // The fixture CNN: its halves agree more when each has more samples.
            use cnn = TorchScriptModel.Load(fixture "tiny_cnn.pt")
            cnn.eval() |> ignore
            let few = (splitHalf cnn 8 OutputFunction.Probability).mean().item<float>()
            let many = (splitHalf cnn 256 OutputFunction.Probability).mean().item<float>()
            Expect.isGreaterThan many few $"mean split-half Spearman: 8 samples {few:F3}, 256 samples {many:F3}"
        }

        test "a file that is not TorchScript is refused with a message saying how to make one" {
            Expect.throwsT<InvalidDataException> (fun () -> TorchScriptModel.Load(fixture "tiny_cnn.pth") |> ignore) "a state dict"
        }

        test "normalisation inside the model: maps in pixel space are the chain rule's 1/std times the normalised maps" {
            use scope = torch.NewDisposeScope()
            use inner = TorchScriptModel.Load(fixture "tiny_cnn.pt")
            let mean, std = [| 0.5; 0.4; 0.3 |], [| 0.25; 0.5; 2.0 |]
            use model = new Normalised(inner, mean, std)
            model.eval() |> ignore
            let test = Attribution.Data.TensorFile.Load(fixture "own_data.safetensors").Test
            let x = test.Images.narrow(0L, 0L, 2L)
            let targets = torch.tensor([| 0L; 1L |])
            let normalisedX = (x - torch.tensor(mean).view(1L, 3L, 1L, 1L).``to``(torch.float32)) / torch.tensor(std).view(1L, 3L, 1L, 1L).``to``(torch.float32)
            use outer = Presets.Saliency(false).Explain(model, x, targets, ExplainOptions())
            use plain = Presets.Saliency(false).Explain(inner, normalisedX, targets, ExplainOptions())
            closeRelative outer.Maps (plain.Maps / torch.tensor(std).view(1L, 3L, 1L, 1L).``to``(torch.float32)) "d f(n(x)) / dx = f'(n(x)) / std"
        }
    ]
