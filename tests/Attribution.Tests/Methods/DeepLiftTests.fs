/// DeepLIFT (Rescale) and DeepSHAP: hand-computed multipliers, linear models, summation-to-delta.
module DeepLiftTests

open Expecto
open TorchSharp
open TorchSharp.Modules
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Models
open TestModels
open RuleBasedTests

/// A swappable-ReLU hook for test models.
type Swappable() =
    member val Relu = System.Func<Tensor, Tensor>(fun x -> x.relu()) with get, set
    member this.Use(r: System.Func<Tensor, Tensor>) =
        let previous = this.Relu
        this.Relu <- r
        { new System.IDisposable with member _.Dispose() = this.Relu <- previous }

/// A ReLU MLP with biases, d -> h -> h -> classes, on inputs [B, 1, 1, d]; no pooling.
type RectifiedMlp(d: int, hidden: int, classes: int) as this =
    inherit nn.Module<Tensor, Tensor>("rectified_mlp")
    let l1 = nn.Linear(int64 d, int64 hidden)
    let l2 = nn.Linear(int64 hidden, int64 hidden)
    let l3 = nn.Linear(int64 hidden, int64 classes)
    let relu = Swappable()
    do this.RegisterComponents()
    override _.forward(x) =
        use scope = NewDisposeScope()
        let h = relu.Relu.Invoke(l1.forward(x.flatten(1)))
        l3.forward(relu.Relu.Invoke(l2.forward(h))).MoveToOuterDisposeScope()
    interface IRectifiedModel with
        member _.UseRectifier(r) = relu.Use(r)

/// Logits W x + c: no ReLU to swap, so DeepLIFT is W_k (.) (x - b).
type AffineRectified(w: float32[,], c: float32[]) =
    inherit nn.Module<Tensor, Tensor>("affine_rectified")
    let weights = tensor(w)
    let bias = tensor(c)
    override _.forward(x) = x.flatten(1).matmul(weights.t()) + bias
    interface IRectifiedModel with
        member _.UseRectifier(_) = { new System.IDisposable with member _.Dispose() = () }

/// Logits [v * maxpool_2x2(x), 0] on inputs [B, 1, 2, 2], with a swappable max-pool.
type PooledNet(v: float32) =
    inherit nn.Module<Tensor, Tensor>("pooled_net")
    let mutable pool = System.Func<Tensor, int64, Tensor>(fun x k -> nn.functional.max_pool2d(x, k))
    override _.forward(x) =
        let y = pool.Invoke(x, 2L).flatten(1).sum(1) * v
        stack([| y; zeros_like(y) |], 1L)
    interface IRectifiedModel with
        member _.UseRectifier(_) = { new System.IDisposable with member _.Dispose() = () }
        member _.UseMaxPool(p) =
            let previous = pool
            pool <- p
            { new System.IDisposable with member _.Dispose() = pool <- previous }

let logit = ExplainOptions(Output = OutputFunction.Logit)

/// f_target(x) per row, plain forward.
let picked (model: nn.Module<Tensor, Tensor>) (x: Tensor) (targets: Tensor) =
    use g = no_grad()
    model.forward(x).gather(1L, targets.unsqueeze(1L)).squeeze(1L)

let mlp () =
    torch.manual_seed 5L |> ignore
    let m = new RectifiedMlp(6, 8, 3)
    m.eval() |> ignore
    m

[<Tests>]
let tests =
    testList "deeplift" [
        // y = v . relu(x), v = (-2, 3, 4), x = (1, -1, 2), b = 0.5: x - b = (0.5, -1.5, 1.5);
        // rescale multipliers (relu(x) - relu(b)) / (x - b) = (0.5/0.5, -0.5/-1.5, 1.5/1.5) = (1, 1/3, 1);
        // map = v * m * (x - b) = (-1, -1.5, 6), summing to f(x) - f(b) = 6 - 2.5.
        test "the rescale multiplier of one ReLU (hand-computed example)" {
            use scope = NewDisposeScope()
            let model = new RectifiedNet([| -2.0f; 3.0f; 4.0f |])
            let x = tensor([| 1.0f; -1.0f; 2.0f |]).view(1, 1, 1, 3)
            use e = DeepLift(0.5).Explain(model, x, tensor([| 0L |]), logit)
            let map = toArray e.Maps
            // float32: 1/3 and its products round, so "equal" means within a few ulp of the example's largest value (6), and
            // the convergence delta is a rounding residue of sums whose terms add up to |map| + |f(x)| + |f(b)| = 17.
            let float32Rounding = { absolute = 1e-6 * 6.0; relative = 0.0 }
            for (got, want) in Array.zip map [| -1.0; -1.5; 6.0 |] do Expect.floatClose float32Rounding got want "rescale map"
            Expect.floatClose { absolute = 1e-6 * 17.0; relative = 0.0 } (toArray e.Diagnostics["convergence_delta"]).[0] 0.0 "sums to f(x) - f(b)"
            use plain = Presets.Saliency(false).Explain(model, x, tensor([| 0L |]), logit)
            Expect.sequenceEqual (toArray plain.Maps) [| -2.0; 0.0; 4.0 |] "the ReLU is restored afterwards"
        }

        test "where x = x0 the multiplier falls back to the gradient" {
            use scope = NewDisposeScope()
            let model = new RectifiedNet([| -2.0f; 3.0f |])
            // feature 0 equals the baseline (x - b = 0, map 0 whatever the multiplier, and no NaN); feature 1 does not.
            let x = tensor([| 0.5f; 2.0f |]).view(1, 1, 1, 2)
            use e = DeepLift(0.5).Explain(model, x, tensor([| 0L |]), logit)
            Expect.sequenceEqual (toArray e.Maps) [| 0.0; 4.5 |] "finite, rescale on feature 1"
        }

        // x = [[1, 3], [2, 0]], x0 = [[4, 0], [0, 0]]: y = 3, y0 = 4, m = max(y, y0) = 4. Captum's rule routes
        // m - y0 = 0 to x's max (3) and y - m = -1 to x0's max (4, where x - x0 = -3): multiplier 1/3 there.
        // Map v * (-1, 0, 0, 0), summing to v (y - y0); the gradient rule would give v * (0, 3, 0, 0).
        test "the max-pool rule splits the pooled delta between the input's and the reference's max (hand-computed)" {
            use scope = NewDisposeScope()
            let model = new PooledNet(2.0f)
            let x = tensor([| 1.0f; 3.0f; 2.0f; 0.0f |]).view(1, 1, 2, 2)
            let reference = tensor([| 4.0f; 0.0f; 0.0f; 0.0f |]).view(1, 1, 2, 2)
            use e = DeepLiftShap(reference).Explain(model, x, tensor([| 0L |]), logit)
            let map = toArray e.Maps
            // float32: the multiplier 1/3 rounds; within a few ulp of the example's scale (|f(x)| + |f(b)| = 14)
            let float32Rounding = { absolute = 1e-6 * 14.0; relative = 0.0 }
            for (got, want) in Array.zip map [| -2.0; 0.0; 0.0; 0.0 |] do Expect.floatClose float32Rounding got want "pooled delta at the reference's max"
            Expect.floatClose float32Rounding (Array.sum map) -2.0 "sums to f(x) - f(b)"
        }

        test "on a linear model DeepLIFT is w (.) (x - b)" {
            use scope = NewDisposeScope()
            let w = array2D [ [ 1.0f; -2.0f; 0.5f ]; [ 3.0f; 0.0f; -1.0f ] ]
            let model = new AffineRectified(w, [| 0.3f; -0.7f |])
            let x = tensor([| 2.0f; -1.0f; 4.0f; 0.0f; 1.0f; -3.0f |]).view(2, 1, 1, 3)
            use e = DeepLift(0.25).Explain(model, x, tensor([| 0L; 1L |]), logit)
            let want = [| for r, row in [ 0, [| 2.0; -1.0; 4.0 |]; 1, [| 0.0; 1.0; -3.0 |] ] do
                              for j in 0 .. 2 -> float w.[r, j] * (row.[j] - 0.25) |]
            for (got, want) in Array.zip (toArray e.Maps) want do Expect.floatClose Accuracy.high got want "w (.) (x - b)"
        }

        test "summation-to-delta on a ReLU MLP: sum of the map = f(x) - f(b), to 1e-5" {
            use scope = NewDisposeScope()
            let model = mlp ()
            let x = randn(5, 1, 1, 6)
            let targets = tensor([| 0L; 1L; 2L; 1L; 0L |])
            use e = DeepLift(0.0).Explain(model, x, targets, logit)
            let sums = toArray (e.Maps.flatten(1).sum(1))
            let gaps = toArray (picked model x targets - picked model (zeros_like(x)) targets)
            for (s, g) in Array.zip sums gaps do Expect.isLessThan (abs (s - g)) 1e-5 "sum = f(x) - f(0)"
            for d in toArray e.Diagnostics["convergence_delta"] do Expect.isLessThan (abs d) 1e-5 "convergence delta"
            use plain = Presets.Saliency(false).Explain(model, x, targets, logit)
            use gxi = Presets.GradientXInput().Explain(model, x, targets, logit)
            Expect.isFalse (e.Maps.allclose(gxi.Maps, 1e-4, 1e-6)) "not gradient x input: the multipliers are rescaled"
        }

        test "DeepSHAP sums to f(x) - mean_j f(b_j) on a ReLU MLP, whatever the batch size" {
            use scope = NewDisposeScope()
            let model = mlp ()
            let x = randn(3, 1, 1, 6)
            let references = randn(4, 1, 1, 6)
            let targets = tensor([| 2L; 0L; 1L |])
            use e = DeepLiftShap(references).Explain(model, x, targets, logit)
            let meanRef = toArray (model.forward(references).detach().mean([| 0L |]).index_select(0L, targets))
            let fx = toArray (picked model x targets)
            let sums = toArray (e.Maps.flatten(1).sum(1))
            for i in 0 .. 2 do Expect.isLessThan (abs (sums.[i] - (fx.[i] - meanRef.[i]))) 1e-5 "sum = f(x) - E f(b)"
            use small = DeepLiftShap(references).Explain(model, x, targets, ExplainOptions(Output = OutputFunction.Logit, BatchSize = 3))
            expectCloseOnScale 1e-5 small.Maps e.Maps "one pair per chunk gives the same map"
        }

        test "DeepSHAP with a single baseline equals DeepLIFT" {
            use scope = NewDisposeScope()
            let model = mlp ()
            let x = randn(4, 1, 1, 6)
            let targets = tensor([| 0L; 1L; 2L; 0L |])
            use shap = DeepLiftShap(zeros(1, 1, 1, 6) + 0.3).Explain(model, x, targets, logit)
            use lift = DeepLift(0.3).Explain(model, x, targets, logit)
            Expect.isTrue (shap.Maps.allclose(lift.Maps, 0.0, 0.0)) "same map"
        }

        test "DeepLIFT on the Fashion-MNIST CNN runs, is finite, and leaves the forward pass unchanged" {
            use scope = NewDisposeScope()
            torch.manual_seed 11L |> ignore
            let model = new FashionCnn()
            model.eval() |> ignore
            let x = rand(2, 1, 28, 28)
            let targets = tensor([| 1L; 4L |])
            let before = model.forward(x).detach()
            use e = DeepLift().Explain(model, x, targets, logit)
            Expect.sequenceEqual e.Maps.shape x.shape "shaped like the inputs"
            Expect.isTrue (e.Maps.isfinite().all().item<bool>()) "finite"
            Expect.isTrue (model.forward(x).allclose(before, 0.0, 0.0)) "forward unchanged after the swap"
            // A constant baseline makes every pre-pool map constant per channel (no padding), so the max-pool's
            // selection of the input's maximum is exact and the sum is f(x) - f(b) to rounding.
            let gaps = toArray (picked model x targets - picked model (zeros_like(x)) targets)
            let sums = toArray (e.Maps.flatten(1).sum(1))
            for (s, g) in Array.zip sums gaps do Expect.isLessThan (abs (s - g)) 1e-5 "sum = f(x) - f(0)"
        }

        test "DeepSHAP on the Fashion-MNIST CNN: the max-pool rule keeps summation-to-delta with non-constant references" {
            use scope = NewDisposeScope()
            torch.manual_seed 11L |> ignore
            let model = new FashionCnn()
            model.eval() |> ignore
            use g = new Generator(3UL, CPU)
            let x = rand([| 3L; 1L; 28L; 28L |], generator = g)
            let references = rand([| 4L; 1L; 28L; 28L |], generator = g)
            let targets = tensor([| 1L; 4L; 7L |])
            use e = DeepLiftShap(references).Explain(model, x, targets, logit)
            let meanRef = toArray (model.forward(references).detach().mean([| 0L |]).index_select(0L, targets))
            let gaps = Array.map2 (-) (toArray (picked model x targets)) meanRef
            let deltas = toArray e.Diagnostics["convergence_delta"]
            let sums = toArray (e.Maps.flatten(1).sum(1))
            // Both sides are float32 rounding residues of sums over 784 attributions and of two logits: their size is
            // float32's precision times the sum of the magnitudes added (an absolute 1e-8 failed on another machine of
            // this kind with 1.6e-8).
            let magnitudes = toArray (e.Maps.abs().flatten(1).sum(1))
            for i in 0 .. 2 do
                let scale = magnitudes.[i] + abs sums.[i] + abs gaps.[i] + abs meanRef.[i]
                Expect.isLessThan (abs ((sums.[i] - gaps.[i]) - deltas.[i])) (1e-6 * scale) "the diagnostic is sum - (f(x) - E f(b)), to float32 rounding"
                Expect.isLessThan (abs deltas.[i]) (1e-5 * max scale 1.0) "sum = f(x) - E f(b) up to rounding"
        }

        test "the probability output and models that cannot swap their ReLUs are refused with clear errors" {
            use scope = NewDisposeScope()
            let model = mlp ()
            let e1 = Expect.throwsC (fun () -> DeepLift().Explain(model, rand(1, 1, 1, 6), tensor([| 0L |]), ExplainOptions()) |> ignore) id
            Expect.stringContains e1.Message "logit" "names the output to use"
            let e2 = Expect.throwsC (fun () -> DeepLift().Explain(tinyNet 1 3 4 2, rand(1, 1, 1, 3), tensor([| 0L |]), logit) |> ignore) id
            Expect.stringContains e2.Message "IRectifiedModel" "names what is missing"
        }
    ]
