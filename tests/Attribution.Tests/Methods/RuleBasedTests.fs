/// Rule-based methods: the modified ReLU backward rules, on a model whose answer is worked out by hand.
module RuleBasedTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Models
open TestModels

/// Logits [v . relu(x), 0] on inputs [B, 1, 1, d], with a swappable ReLU.
type RectifiedNet(v: float32[]) =
    inherit nn.Module<Tensor, Tensor>("rectified_net")
    let weights = tensor(v)
    let mutable relu = System.Func<Tensor, Tensor>(fun x -> x.relu())
    override _.forward(x) =
        let y = relu.Invoke(x.flatten(1)).matmul(weights)
        stack([| y; zeros_like(y) |], 1L)
    interface IRectifiedModel with
        member _.UseRectifier(r) =
            let previous = relu
            relu <- r
            { new System.IDisposable with member _.Dispose() = relu <- previous }

[<Tests>]
let tests =
    testList "rule-based methods" [
        // h = relu(x), y = v . h at x = (1, -1, 2), v = (-2, 3, 4): the ReLU is open on features 0 and 2.
        // gradient: v * [x > 0] = (-2, 0, 4); guided: max(v, 0) * [x > 0] = (0, 0, 4); deconvnet: max(v, 0) = (0, 3, 4)
        test "guided backpropagation and deconvnet follow their ReLU rules (hand-computed example)" {
            use scope = NewDisposeScope()
            let model = new RectifiedNet([| -2.0f; 3.0f; 4.0f |])
            let x = tensor([| 1.0f; -1.0f; 2.0f |]).view(1, 1, 1, 3)
            let options = ExplainOptions(Output = OutputFunction.Logit)
            let map (m: IAttributionMethod) = use e = m.Explain(model, x, tensor([| 0L |]), options) in toArray e.Maps
            Expect.sequenceEqual (map (Presets.Saliency(false))) [| -2.0; 0.0; 4.0 |] "plain gradient"
            Expect.sequenceEqual (map (GuidedBackpropagation(ReluRule.Guided))) [| 0.0; 0.0; 4.0 |] "guided"
            Expect.sequenceEqual (map (GuidedBackpropagation(ReluRule.Deconvnet))) [| 0.0; 3.0; 4.0 |] "deconvnet"
            Expect.sequenceEqual (map (Presets.Saliency(false))) [| -2.0; 0.0; 4.0 |] "the ReLU is restored afterwards"
        }

        test "guided backpropagation on the Fashion-MNIST CNN differs from the gradient and leaves the forward pass unchanged" {
            use scope = NewDisposeScope()
            torch.manual_seed 11L |> ignore
            let model = new FashionCnn()
            model.eval() |> ignore
            let x = rand(2, 1, 28, 28)
            let before = model.forward(x)
            use guided = GuidedBackpropagation().Explain(model, x, tensor([| 1L; 4L |]), ExplainOptions())
            use plain = Presets.Saliency(false).Explain(model, x, tensor([| 1L; 4L |]), ExplainOptions())
            Expect.isFalse (guided.Maps.allclose(plain.Maps, 1e-6, 1e-9)) "a different backward pass"
            Expect.isTrue (model.forward(x).allclose(before, 0.0, 0.0)) "forward unchanged after the swap"
        }

        test "a model that cannot swap its ReLUs is refused with a clear error" {
            let model = tinyNet 1 3 4 2
            let e = Expect.throwsC (fun () -> GuidedBackpropagation().Explain(model, rand(1, 1, 1, 3), tensor([| 0L |]), ExplainOptions()) |> ignore) id
            Expect.stringContains e.Message "IRectifiedModel" "names what is missing"
        }
    ]
