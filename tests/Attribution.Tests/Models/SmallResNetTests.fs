/// The small ResNet: shapes, cutting at stages, re-initialising a stage, swapping every ReLU, and the layer- and
/// rule-based methods on it (DeepLIFT's summation-to-delta across residual additions and batch norm in eval mode).
module SmallResNetTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Models

/// A ResNet in eval mode whose batch-norm layers carry non-trivial running statistics and affine parameters
/// (a fresh one has mean 0, variance 1, scale 1, shift 0, which would hide mistakes in their handling).
let private resnet seed (shape: SmallResNet.Shape) =
    torch.manual_seed (int64 seed) |> ignore
    let model = new SmallResNet(shape)
    use noGrad = no_grad()
    for KeyValue(name, value) in model.state_dict() do
        if name.EndsWith "running_mean" || name.EndsWith "bn.bias" then value.copy_(randn_like(value) * 0.2) |> ignore
        elif name.EndsWith "running_var" || name.EndsWith "bn.weight" then value.copy_(rand_like(value) + 0.5) |> ignore
    model.eval() |> ignore
    model

let private shape28 = SmallResNet.Shape()

[<Tests>]
let tests =
    testList "small resnet" [
        test "logits and stage activations have the documented shapes at 28 and 56 px" {
            use scope = NewDisposeScope()
            for side, feature in [ 28, 7; 56, 14 ] do
                let model = resnet 1 (SmallResNet.Shape(ImageSize = side))
                let x = rand(2, 1, side, side)
                Expect.equal model.Dimensions.FeatureSide feature $"{side} px: FeatureSide"
                Expect.sequenceEqual (model.forward(x).shape) [| 2L; 10L |] $"{side} px: logits"
                Expect.sequenceEqual (model.ForwardTo("stem", x).shape) [| 2L; 16L; int64 side; int64 side |] "stem"
                Expect.sequenceEqual (model.ForwardTo("stage2", x).shape) [| 2L; 32L; int64 (side / 2); int64 (side / 2) |] "stage2"
                Expect.sequenceEqual (model.ForwardTo("stage3", x).shape) [| 2L; 64L; int64 feature; int64 feature |] "stage3"
                Expect.sequenceEqual (model.ForwardTo("pool", x).shape) [| 2L; 64L |] "pool"
        }

        test "ForwardFrom(stage, ForwardTo(stage, x)) = forward(x) at every stage (ResNet-20 layout, 3 blocks a stage)" {
            use scope = NewDisposeScope()
            let model = resnet 2 (SmallResNet.Shape(BlocksPerStage = 3))
            let x = rand(3, 1, 28, 28)
            let expected = model.forward(x)
            Expect.sequenceEqual model.Stages [ "stem"; "stage1"; "stage2"; "stage3"; "pool"; "fc" ] "stage names in forward order"
            for stage in model.Stages do
                Expect.isTrue (model.ForwardFrom(stage, model.ForwardTo(stage, x)).allclose(expected, 1e-5, 1e-6)) $"cut at {stage}"
        }

        test "re-initialising a stage changes every parameter and statistic of that stage and nothing else" {
            use scope = NewDisposeScope()
            let model = resnet 3 (SmallResNet.Shape(BlocksPerStage = 2))
            let before = model.state_dict() |> Seq.map (fun kv -> kv.Key, kv.Value.clone()) |> Map.ofSeq
            for stage in model.ParameterStages do
                let model = resnet 3 (SmallResNet.Shape(BlocksPerStage = 2))
                use g = new Generator(9UL, CPU)
                model.Reinitialise(stage, g)
                for KeyValue(name, value) in model.state_dict() do
                    if not (name.EndsWith "num_batches_tracked") then
                        let same = value.eq(before.[name]).all().item<bool>()
                        if name.StartsWith(stage + ".") then Expect.isFalse same $"{stage}: {name} re-drawn"
                        else Expect.isTrue same $"{stage}: {name} untouched"
            let unknown = Expect.throwsC (fun () -> model.Reinitialise("pool", new Generator(1UL, CPU))) id
            Expect.stringContains unknown.Message "no parameters" "pool has none"
        }

        test "UseRectifier replaces every ReLU (stem and both of each block) and the scope restores them" {
            use scope = NewDisposeScope()
            let model = resnet 4 (SmallResNet.Shape(BlocksPerStage = 2))
            let x = rand(2, 1, 28, 28)
            let expected = model.forward(x)
            let mutable calls = 0
            using (model.UseRectifier(fun h -> calls <- calls + 1; h.alias())) (fun _ ->
                let linear = model.forward(x)
                Expect.isFalse (linear.allclose(expected, 1e-3, 1e-3)) "the identity in place of ReLU changes the logits")
            Expect.equal calls (1 + 3 * 2 * 2) "1 in the stem + 2 per block x 2 blocks x 3 stages"
            Expect.isTrue (model.forward(x).eq(expected).all().item<bool>()) "restored"
        }

        test "input gradients are finite and non-zero" {
            use scope = NewDisposeScope()
            let model = resnet 5 shape28
            let x = rand(2, 1, 28, 28).requires_grad_(true)
            let g = autograd.grad([| model.forward(x).select(1L, 3L).sum() |], [| x |]).[0]
            Expect.isTrue (g.isfinite().all().item<bool>()) "finite"
            Expect.isTrue (g.abs().sum().item<float32>() > 0.0f) "non-zero"
        }

        test "DeepLIFT (Rescale) sums to logit(x) - logit(baseline) across residual additions and eval-mode batch norm" {
            use scope = NewDisposeScope()
            let model = resnet 6 shape28
            let x = rand(3, 1, 28, 28)
            let t = tensor([| 0L; 4L; 9L |])
            let options = ExplainOptions(Output = OutputFunction.Logit, BatchSize = 4)
            use e = DeepLift(0.1).Explain(model, x, t, options)
            use noGrad = no_grad()
            let gap = model.forward(x).gather(1L, t.unsqueeze(1L)).squeeze(1L) - model.forward(full_like(x, 0.1)).gather(1L, t.unsqueeze(1L)).squeeze(1L)
            let sums = e.Maps.sum([| 1L; 2L; 3L |])
            Expect.isTrue (sums.allclose(gap, 1e-3, 1e-4)) $"sum of map {sums.str()} vs gap {gap.str()}"
            Expect.isLessThan (e.Diagnostics.["convergence_delta"].abs().max().item<float>()) 1e-3 "convergence delta"
            // Not the gradient times (x - b): the Rescale multipliers differ from the gradient on this network.
            let xg = x.clone().requires_grad_(true)
            use enable = enable_grad()
            let g = autograd.grad([| model.forward(xg).gather(1L, t.unsqueeze(1L)).sum() |], [| xg |]).[0]
            Expect.isFalse (e.Maps.allclose(g * (x - 0.1), 1e-3, 1e-4)) "differs from gradient x delta"
        }

        test "Grad-CAM at stage3, IBA at stage3 and Guided Backprop run and give maps shaped like the input" {
            use scope = NewDisposeScope()
            let model = resnet 7 shape28
            let x = rand(2, 1, 28, 28)
            let t = tensor([| 1L; 2L |])
            use cam = GradCam(SmallResNet.LastConvolutionalStage).Explain(model, x, t, ExplainOptions())
            Expect.sequenceEqual cam.Maps.shape x.shape "Grad-CAM shape"
            Expect.isTrue (cam.Maps.ge(Scalar.op_Implicit 0.0).all().item<bool>()) "Grad-CAM non-negative"
            use stats = InformationBottleneck.EstimateActivationStatistics(model, "stage3", rand(16, 1, 28, 28))
            use iba = InformationBottleneck(stats, steps = 2, copies = 2).Explain(model, x, t, ExplainOptions())
            Expect.sequenceEqual iba.Maps.shape x.shape "IBA shape"
            use gb = GuidedBackpropagation().Explain(model, x, t, ExplainOptions())
            Expect.sequenceEqual gb.Maps.shape x.shape "Guided Backprop shape"
            Expect.isTrue (gb.Maps.isfinite().all().item<bool>()) "finite"
        }
    ]
