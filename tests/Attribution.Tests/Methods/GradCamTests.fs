/// Grad-CAM on a layered model whose answer is known (a conv stage, global average pooling, a linear head:
/// Grad-CAM equals CAM up to 1/(h w)), and the bookkeeping shared by the perturbation and layer methods.
module GradCamTests

open System.Collections.Generic
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Models
open TestModels

/// Stage "conv": A = ReLU(conv3x3(x)) with K = 3 channels, same size as the input; stage "head": logits = V mean_hw(A).
type TinyCamNet(classes: int) as this =
    inherit nn.Module<Tensor, Tensor>("tiny_cam_net")
    let conv = nn.Conv2d(1L, 3L, 3L, padding = 1L)
    let head = nn.Linear(3L, int64 classes)
    do this.RegisterComponents()
    let activation (x: Tensor) = nn.functional.relu(conv.forward(x))
    let logits (a: Tensor) = head.forward(a.mean([| 2L; 3L |]))
    member _.HeadWeight = head.weight
    member _.Activation(x: Tensor) = activation x
    override _.forward(x) =
        use scope = NewDisposeScope()
        (logits (activation x)).MoveToOuterDisposeScope()
    interface ILayeredModel with
        member _.Stages = [| "conv"; "head" |] :> IReadOnlyList<string>
        member _.ParameterStages = [| "conv"; "head" |] :> IReadOnlyList<string>
        member _.ForwardTo(stage, x) = if stage = "conv" then activation x else logits (activation x)
        member _.ForwardFrom(stage, a) = if stage = "conv" then logits a else a.alias()
        member _.Reinitialise(_, _) = ()

let private logit = ExplainOptions(Output = OutputFunction.Logit)

[<Tests>]
let tests =
    testList "grad_cam" [
        test "Grad-CAM of conv -> global average pool -> linear (logit output) is CAM: ReLU(sum_k V_tk A_k) / (h w)" {
            use scope = NewDisposeScope()
            manual_seed(11L) |> ignore
            let model = new TinyCamNet(4)
            let x = randn(3, 1, 6, 6)
            let t = tensor([| 3L; 0L; 2L |])
            use e = GradCam("conv").Explain(model, x, t, logit)
            use noGrad = no_grad()
            let v = model.HeadWeight.index_select(0L, t).view(3, 3, 1, 1)
            let expected = nn.functional.relu((v * model.Activation(x)).sum(1L, keepdim = true)) / 36.0
            expectCloseOnScale 1e-4 e.Maps expected "CAM / (h w)"
            Expect.isTrue (e.Maps.gt(Scalar.op_Implicit 0.0f).any().item<bool>()) "not all zero"
        }

        test "Grad-CAM of FashionCnn at conv2 is upsampled to the input, non-negative, and the same in every chunk size" {
            use scope = NewDisposeScope()
            manual_seed(3L) |> ignore
            let model = new FashionCnn()
            let x = rand(3, 1, 28, 28)
            let t = tensor([| 1L; 5L; 9L |])
            use a = GradCam().Explain(model, x, t, ExplainOptions(BatchSize = 2))
            use b = GradCam().Explain(model, x, t, ExplainOptions(BatchSize = 100))
            Expect.sequenceEqual a.Maps.shape [| 3L; 1L; 28L; 28L |] "input shape"
            Expect.isTrue (a.Maps.ge(Scalar.op_Implicit 0.0f).all().item<bool>()) "ReLU"
            expectCloseOnScale 1e-4 a.Maps b.Maps "chunk invariance"
        }

        test "Grad-CAM refuses a model that cannot be cut at a stage, and names an unknown stage" {
            let flat = tinyNet 1 4 5 2
            let e1 = Expect.throwsC (fun () -> GradCam().Explain(flat, rand(1, 1, 2, 2), tensor([| 0L |]), ExplainOptions()) |> ignore) id
            Expect.stringContains e1.Message "ILayeredModel" "says what is needed"
            let e2 = Expect.throwsC (fun () -> GradCam("conv9").Explain(new FashionCnn(), rand(1, 1, 28, 28), tensor([| 0L |]), ExplainOptions()) |> ignore) id
            Expect.stringContains e2.Message "conv9" "names the stage"
        }

        test "the live-tensor count stays flat over many NeFLAG, Occlusion, LIME and Grad-CAM explanations" {
            let model = tinyNet 2 16 6 3
            let cam = new TinyCamNet(3)
            let x = rand(3, 1, 4, 4)
            let t = tensor([| 0L; 1L; 2L |])
            let methods : (IAttributionMethod * nn.Module<Tensor, Tensor>) list =
                [ NegativeFluxAggregation(samples = 4), model; Occlusion(2, 2, 1, 1), model
                  Lime(samples = 20, cellHeight = 2, cellWidth = 2), model; GradCam("conv"), cam ]
            let explainAll () =
                for m, net in methods do
                    use e = m.Explain(net, x, t, ExplainOptions(BatchSize = 5))
                    ()
            explainAll ()
            let before = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            for _ in 1 .. 10 do explainAll ()
            let after = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            Expect.equal after before "no tensor leaks per explanation"
        }
    ]
