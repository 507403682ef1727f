/// Insertion and deletion (RISE), the Gaussian-blur substrate, on cases whose answer is known.
module InsertionDeletionTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Metrics

/// Logits [log u, log (1 - u)] with u = mean of the first k features: p(class 0) = u exactly.
type ProportionNet(k: int) =
    inherit nn.Module<Tensor, Tensor>("proportion")
    override _.forward(x) =
        use scope = NewDisposeScope()
        let u: Tensor = x.flatten(1).narrow(1, 0L, int64 k).mean([| 1L |]).clamp(Scalar.op_Implicit 1e-7, Scalar.op_Implicit (1.0 - 1e-7))
        stack([| u.log(); (1.0 - u).log() |], 1L).MoveToOuterDisposeScope()

let private d = 10
let private inputs () = ones(4, 1, 1, d)
let private perfect () = arange(float d, 0.0, -1.0).``to``(ScalarType.Float32).view(1, 1, 1, d).expand(4, 1, 1, d).contiguous()

[<Tests>]
let tests =
    testList "insertion and deletion" [
        test "perfect ranking: deletion AUC 0.1, insertion 0.9; reversed: 0.9 and 0.1; Difference +-0.8" {
            use scope = NewDisposeScope()
            let model = new ProportionNet(2)
            let metric = InsertionDeletion(1)
            let targets = zeros(4L, dtype = ScalarType.Int64)
            let good = metric.Evaluate(model, inputs (), perfect (), targets, Substrate.Black(), 0L, CPU)
            let bad = metric.Evaluate(model, inputs (), -perfect (), targets, Substrate.Black(), 0L, CPU)
            // every step is a different state: a live tensor shared by the steps would give a flat curve
            let expectedDeletion = [| 1.0; 0.5; 0.0; 0.0; 0.0; 0.0; 0.0; 0.0; 0.0; 0.0; 0.0 |]
            for c in good.Deletion.Curves do
                Expect.sequenceEqual (c |> Array.map (fun v -> System.Math.Round(v, 5))) expectedDeletion "deletion curve, perfect ranking"
            Expect.sequenceEqual good.Deletion.Fractions [| for i in 0 .. d -> float i / float d |] "fractions 0, 0.1, ..., 1"
            Expect.floatClose Accuracy.medium good.Deletion.MeanAuc 0.1 "deletion, perfect"
            Expect.floatClose Accuracy.medium good.Insertion.MeanAuc 0.9 "insertion, perfect"
            Expect.floatClose Accuracy.medium bad.Deletion.MeanAuc 0.9 "deletion, reversed"
            Expect.floatClose Accuracy.medium bad.Insertion.MeanAuc 0.1 "insertion, reversed"
            Expect.floatClose Accuracy.medium good.Difference 0.8 "Difference, perfect"
            Expect.floatClose Accuracy.medium bad.Difference -0.8 "Difference, reversed"
        }

        test "each step is its own copy: step s of deletion has exactly s pixels at the substrate, insertion exactly s revealed" {
            use scope = NewDisposeScope()
            let metric = InsertionDeletion(1)
            let x = inputs ()
            let s = zeros_like(x)
            let deleted = metric.Perturbed(x, perfect (), s, PerturbationGame.Deletion, 0L)
            let inserted = metric.Perturbed(x, perfect (), s, PerturbationGame.Insertion, 0L)
            Expect.sequenceEqual deleted.shape [| 4L; int64 d + 1L; 1L; 1L; int64 d |] "[B, steps + 1, C, H, W]"
            let zerosPerStep (t: Tensor) = t.eq(Scalar.op_Implicit 0.0f).sum([| 2L; 3L; 4L |]).``to``(ScalarType.Int64).data<int64>().ToArray()
            let expected = [| for _ in 1 .. 4 do for k in 0 .. d -> int64 k |]
            Expect.sequenceEqual (zerosPerStep deleted) expected "deletion: s substrate pixels after s steps"
            Expect.sequenceEqual (zerosPerStep inserted) (expected |> Array.map (fun k -> int64 d - k)) "insertion: s revealed pixels"
            // the most important pixel (index 0) goes first
            Expect.equal (deleted.[0L, 1L, 0L, 0L, 0L].item<float32>()) 0.0f "pixel 0 deleted at step 1"
            Expect.equal (deleted.[0L, 1L, 0L, 0L, 1L].item<float32>()) 1.0f "pixel 1 still there at step 1"
        }

        test "blur of a constant image is constant, also with a kernel wider than the image (sigma 20 on 28x28)" {
            use scope = NewDisposeScope()
            let c = full(2L, 3L, 28L, 28L, 0.37f)
            for sigma in [ 1.0; 20.0 ] do
                let b = GaussianBlur.Apply(c, sigma)
                Expect.sequenceEqual b.shape c.shape "shape"
                Expect.isTrue ((b - 0.37f).abs().max().item<float32>() < 1e-5f) $"constant after blur with sigma {sigma}"
            let s = Substrate.Blurred().Of(c)
            Expect.isTrue ((s - 0.37f).abs().max().item<float32>() < 1e-5f) "default blurred substrate"
        }

        test "blur of an interior impulse is the outer product of the 1-D Gaussian kernel" {
            use scope = NewDisposeScope()
            let x = zeros(1L, 1L, 15L, 15L, dtype = ScalarType.Float64)
            x.[0L, 0L, 7L, 7L] <- tensor(1.0)
            let b = GaussianBlur.Apply(x, 1.0, 7)
            let k = GaussianBlur.Kernel1D(1.0, 7)
            let expected = k.view(7L, 1L).matmul(k.view(1L, 7L))
            let window = b.[0L, 0L].narrow(0, 4L, 7L).narrow(1, 4L, 7L)
            Expect.isTrue ((window - expected).abs().max().item<float>() < 1e-12) "outer product"
            Expect.floatClose Accuracy.high (k.[3L].item<float>()) (1.0 / (exp 0.0 + 2.0 * (exp -0.5 + exp -2.0 + exp -4.5))) "centre weight"
        }
    ]
