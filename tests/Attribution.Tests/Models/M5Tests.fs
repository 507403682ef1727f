/// M5: shapes for 1 s and 2 s, the unfolded convolution against conv1d, input gradients against finite
/// differences, and the layered / rectified hooks the layer-based and rule-based methods use.
module M5Tests

open System
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators
open Attribution.Models
open Attribution.Methods
open Attribution.Metrics

let private m5 seed classes =
    torch.manual_seed(int64 seed) |> ignore
    let m = new M5(M5.Shape(Classes = classes))
    m.eval()
    m

let private waves seed (b: int64) (t: int64) =
    use g = new Generator(uint64 seed, CPU)
    randn([| b; 1L; t |], generator = g) * 0.3

/// Trains BatchNorm's running statistics away from (0, 1) so that eval-mode tests see a non-trivial affine map.
let private warmUp (m: M5) (x: Tensor) =
    m.train()
    use noGrad = torch.no_grad()
    for _ in 1 .. 3 do m.forward(x) |> ignore
    m.eval()

let private logit = ExplainOptions(Output = OutputFunction.Logit)

/// Element-wise equality of two tensors of the same shape.
let private same (a: Tensor) (b: Tensor) = a.shape = b.shape && a.eq(b).all().ToBoolean()

[<Tests>]
let tests =
    testList "m5" [
        test "logits [B, classes] for 1 s and 2 s at 16 kHz; [B, 1, T] and [B, 1, 1, T] give the same logits; too short is an error" {
            use scope = NewDisposeScope()
            let m = m5 0 35
            let x = waves 1 2L 16000L
            Expect.equal (m.forward(x).shape) [| 2L; 35L |] "1 s"
            Expect.equal (m.forward(waves 2 1L 32000L).shape) [| 1L; 35L |] "2 s"
            Expect.isTrue (same (m.forward(x)) (m.forward(x.unsqueeze(2L)))) "image view"
            Expect.equal (m.ForwardTo("conv1", x).shape) [| 2L; 32L; 1L; 996L |] "(16000 - 80) / 16 + 1"
            Expect.equal (m.ForwardTo("pool4", x).shape) [| 2L; 64L; 1L; 3L |] "after the last pool"
            Expect.equal m.Dimensions.MinimumLength 6848L "shortest input"
            m.forward(waves 3 1L 6848L) |> ignore
            Expect.throwsT<ArgumentException> (fun () -> m.forward(waves 3 1L 6847L) |> ignore) "one sample short"
        }

        test "ForwardFrom(stage, ForwardTo(stage, x)) = forward(x) at every stage" {
            use scope = NewDisposeScope()
            let m = m5 1 10
            let x = waves 4 2L 8000L
            warmUp m x
            let full = m.forward(x)
            for stage in m.Stages do
                Expect.isTrue (m.ForwardFrom(stage, m.ForwardTo(stage, x)).allclose(full, rtol = 1e-5, atol = 1e-6)) stage
        }

        test "the unfolded convolution is Conv1d: stage conv1 = ReLU(BN(conv1d(x, W as [32, 1, 80], stride 16)))" {
            use scope = NewDisposeScope()
            let m = m5 2 10
            let x = waves 5 2L 8000L
            warmUp m x
            let p = m.named_parameters() |> Seq.map (fun struct (n, t) -> n, t) |> dict
            let b = m.named_buffers() |> Seq.map (fun struct (n, t) -> n, t) |> dict
            use noGrad = torch.no_grad()
            let conv = nn.functional.conv1d(x, p["conv1.weight"].view(32L, 1L, 80L), p["conv1.bias"], stride = 16L)
            let bn = (conv - b["bn1.running_mean"].view(1L, -1L, 1L)) / (b["bn1.running_var"].view(1L, -1L, 1L) + 1e-5).sqrt()
                     * p["bn1.weight"].view(1L, -1L, 1L) + p["bn1.bias"].view(1L, -1L, 1L)
            let expected = nn.functional.relu(bn).unsqueeze(2L)
            Expect.isTrue (m.ForwardTo("conv1", x).allclose(expected, rtol = 1e-4, atol = 1e-5)) "same activation"
        }

        test "input gradients are finite and match central finite differences, coordinate by coordinate (float64)" {
            // In eval mode M5 is piecewise linear; a single coordinate moved by 1e-5 crosses a ReLU or max-pool kink with
            // negligible probability, so the difference quotient equals the gradient up to rounding.
            use scope = NewDisposeScope()
            let m = m5 3 10
            warmUp m (waves 6 4L 8000L)
            m.``to``(ScalarType.Float64) |> ignore
            let x = (waves 7 1L 8000L).``to``(ScalarType.Float64)
            let target = tensor([| 3L |])
            let f (z: Tensor) = m.forward(z).gather(1L, target.unsqueeze(1L)).sum()
            let rng = Random(5)
            for round in 1 .. 2 do
                let xr = x.detach().requires_grad_(true)
                let g = torch.autograd.grad([| f xr |], [| xr |]).[0]
                Expect.isTrue (g.isfinite().all().ToBoolean()) $"finite gradient, round {round}"
                Expect.isGreaterThan (g.abs().sum().ToDouble()) 0.0 "non-zero"
                use noGrad = torch.no_grad()
                let h = 1e-5
                for _ in 1 .. 8 do
                    let row, i = 0L, int64 (rng.Next 8000)
                    let step = zeros_like(x)
                    step[row, 0L, i] <- tensor(h, ScalarType.Float64)
                    let numeric = ((f (x + step)).ToDouble() - (f (x - step)).ToDouble()) / (2.0 * h)
                    let analytic = g[row, 0L, i].ToDouble()
                    Expect.floatClose { absolute = 1e-9; relative = 1e-6 } analytic numeric $"d f / d x[{row}, {i}], round {round}"
        }

        test "Reinitialise redraws a conv stage's weights and resets its BatchNorm; unknown stages are errors" {
            use scope = NewDisposeScope()
            let m = m5 4 10
            warmUp m (waves 7 4L 8000L)
            let p () = m.named_parameters() |> Seq.map (fun struct (n, t) -> n, t.detach().clone()) |> dict
            let b () = m.named_buffers() |> Seq.map (fun struct (n, t) -> n, t.detach().clone()) |> dict
            let before = p ()
            use g = new Generator(9UL, CPU)
            m.Reinitialise("conv2", g)
            let after = p ()
            Expect.isFalse (same (after["conv2.weight"]) (before["conv2.weight"])) "conv2 redrawn"
            Expect.isTrue (same (after["conv1.weight"]) (before["conv1.weight"])) "conv1 untouched"
            Expect.isTrue (after["conv2.weight"].abs().max().ToDouble() <= 1.0 / sqrt (32.0 * 3.0)) "U(-1/sqrt(fan_in), 1/sqrt(fan_in))"
            let buffers = b ()
            let one = tensor(1.0f)
            Expect.isTrue (buffers["bn2.running_var"].eq(one).all().ToBoolean()) "running variance reset"
            Expect.isFalse (buffers["bn1.running_var"].eq(one).all().ToBoolean()) "bn1 keeps its statistics"
            Expect.throwsT<ArgumentException> (fun () -> m.Reinitialise("pool1", g)) "no parameters"
        }

        test "DeepLIFT with M5's swapped max-pool keeps summation-to-delta: sum of the map = f(x) - f(0)" {
            use scope = NewDisposeScope()
            let m = m5 5 10
            let x0 = waves 8 2L 8000L
            warmUp m x0
            m.``to``(ScalarType.Float64) |> ignore
            let x = x0.``to``(ScalarType.Float64)
            use e = DeepLift(0.0).Explain(m, x, tensor([| 1L; 4L |]), logit)
            let fx = m.forward(x).gather(1L, tensor([| 1L; 4L |]).unsqueeze(1L)).squeeze(1L)
            let f0 = m.forward(zeros_like(x)).gather(1L, tensor([| 1L; 4L |]).unsqueeze(1L)).squeeze(1L)
            let sums = e.Maps.sum([| 1L; 2L |])
            Expect.isTrue (sums.allclose(fx - f0, rtol = 1e-6, atol = 1e-8)) $"sums {sums.data<float>().ToArray()} vs deltas {(fx - f0).data<float>().ToArray()}"
        }

        test "guided backprop goes through M5's rectifier; Grad-CAM and IBA give [B, 1, 1, T] maps; parameter randomisation runs output first" {
            use scope = NewDisposeScope()
            let m = m5 6 10
            let x = (waves 9 4L 8000L).unsqueeze(2L)
            warmUp m x
            let t = tensor([| 0L; 1L; 2L; 3L |])
            use saliency = Presets.Saliency(false).Explain(m, x, t, logit)
            use guided = GuidedBackpropagation().Explain(m, x, t, logit)
            Expect.equal guided.Maps.shape x.shape "guided shape"
            Expect.isFalse (guided.Maps.allclose(saliency.Maps)) "the guided rule changes the map"
            use cam = GradCam("conv4").Explain(m, x, t, logit)
            Expect.equal cam.Maps.shape x.shape "Grad-CAM upsampled to [B, 1, 1, T]"
            let stats = InformationBottleneck.EstimateActivationStatistics(m, "conv2", x)
            use iba = InformationBottleneck(stats, steps = 2).Explain(m, x, t, logit)
            Expect.equal iba.Maps.shape x.shape "IBA shape"
            Expect.isTrue (iba.Maps.isfinite().all().ToBoolean()) "IBA finite"
            let stages = ParameterRandomisation().Run(m, (fun () -> new M5(M5.Shape(Classes = 10))), Presets.Saliency(), x, t, logit, 1L)
            Expect.sequenceEqual (stages |> Seq.map (fun s -> s.Stage)) [ "fc"; "conv4"; "conv3"; "conv2"; "conv1" ] "output first"
        }
    ]
