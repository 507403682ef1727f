/// Extremal Perturbations must follow the model: on a small-logit model its mask beats the fully blurred image and a
/// random mask of the same area, and it changes when the model does. These failed before the area term sorted
/// TorchRay's padded canvas (the masks sat on the image's last column whatever the model).
module ExtremalModelTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Metrics
open ExtremalPerturbationTests

let private noise seed (shape: int64[]) =
    use g = new Generator(uint64 seed, CPU)
    rand(shape, generator = g)

let private scalar (t: Tensor) = t.``to``(ScalarType.Float64).item<float>()

/// Binary masks [B, 1, H, W] keeping the `keep` highest pixels of each map.
let private top (maps: Tensor) (keep: int64) =
    let n = maps.shape.[0]
    let flat = maps.reshape(n, -1L)
    let idx = flat.argsort(1L, descending = true).narrow(1L, 0L, keep)
    zeros_like(flat).scatter(1L, idx, ones(n, keep, dtype = flat.dtype)).view_as(maps)

/// Logit 0 of `model` for images [B, 1, H, W] perturbed by masks through the method's own blur pyramid.
let private rewardOf (model: nn.Module<Tensor, Tensor>) (x: Tensor) (masks: Tensor) (maxBlur: float) =
    use pyramid = new BlurPyramid(x, 8, maxBlur)
    model.forward(pyramid.Apply(masks)).select(1L, 0L)

[<Tests>]
let tests =
    testList "extremal_perturbation model" [
        test "the padded canvas is TorchRay's shape_out, its window is the image mask, and sorted over the image alone a grid of ones puts the top 10% on the last two rows and columns" {
            use scope = NewDisposeScope()
            use generator = new SmoothMask(28L, 28L, 1, 2.625, CPU, ScalarType.Float64)
            let canvas = generator.GenerateWithMargin(ones([| 1L; 1L; 28L; 28L |], dtype = ScalarType.Float64))
            Expect.sequenceEqual canvas.shape [| 1L; 1L; 34L; 34L |] "TorchRay's shape_out at 28 px, step 1, sigma 2.625"
            Expect.isTrue (generator.Window(canvas).allclose(generator.Generate(ones([| 1L; 1L; 28L; 28L |], dtype = ScalarType.Float64)), 0.0, 0.0)) "Generate is the image window"
            let image = generator.Generate(ones([| 1L; 1L; 28L; 28L |], dtype = ScalarType.Float64))
            // The 78 highest of the 784 pixels (the top 10%) all lie in the last two rows and columns (108 pixels): with no
            // low neighbours past the grid's end, the soft max is highest there. Which of the exactly tied pixels of the
            // last row and column get the last places depends on rounding, so the test counts the band, not a column.
            let band = ones([| 1L; 1L; 28L; 28L |], dtype = ScalarType.Float64)
            band.narrow(2L, 0L, 26L).narrow(3L, 0L, 26L).zero_() |> ignore
            let inBand = scalar ((top image 78L * band).sum())
            Expect.equal inBand 78.0 "sorted over the image alone, the top 10% is the last two rows and columns (the old lock-in)"
        }

        test "a box-texture logit of a small model's scale (c = 1): the mask of area 0.1 covers the box and its reward beats the fully blurred image and random masks of the same area" {
            use scope = NewDisposeScope()
            // Logit = sum over a 9x9 box of (x - 1/2)^2: about 7 on uniform noise, about 0.1 blurred; the scale of the
            // trained FashionCnn's logits (7.4 on its images, 0.1 blurred), 10 times weaker than in the known-answer test.
            let model = new BoxEnergyNet(28, 15, 4, 9, 9, 1.0)
            let x = noise 21 [| 2L; 1L; 28L; 28L |]
            let method = ExtremalPerturbation(iterations = 400, areaWeightGrowth = 1.0035 * 1.0035, jitter = false)
            let maxBlur = let struct (_, _, b) = method.SizesFor(28L, 28L) in b
            use e = method.Explain(model, x, tensor([| 0L; 0L |]), ExplainOptions())
            use noGrad = no_grad()
            let masks = e.Maps.narrow(1L, 0L, 1L)
            let kept = top masks 78L
            let reward = rewardOf model x kept maxBlur
            let blurred = rewardOf model x (zeros_like(masks)) maxBlur
            use generator = new SmoothMask(28L, 28L, 1, 2.625, CPU, ScalarType.Float32)
            let randoms = [ for s in 1 .. 8 -> rewardOf model x (top (generator.Generate(noise (100 + s) [| 2L; 1L; 28L; 28L |])) 78L) maxBlur ]
            let best = stack(randoms, 0L).amax([| 0L |])
            let box = model.Box.view(1L, 1L, 28L, 28L)
            for i in 0L .. 1L do
                let r, b, q = scalar reward.[i], scalar blurred.[i], scalar best.[i]
                Expect.isGreaterThan r (b + 0.5 * (scalar (model.forward(x).[i, 0L]) - b)) $"input {i}: the kept 10%% recovers most of the logit ({r:F2}; blurred {b:F2})"
                Expect.isGreaterThan r (q + 1.0) $"input {i}: beats the best of 8 random same-area masks ({q:F2}) by a logit"
                let covered = scalar ((masks.[i].ge(Scalar.op_Implicit 0.5).``to``(ScalarType.Float32) * box).sum() / box.sum())
                Expect.isGreaterThan covered 0.9 $"input {i}: the box is kept ({covered:F3})"
        }

        test "the map follows the model: moving the box the logit sees moves the mask (SSIM well below 0.9)" {
            use scope = NewDisposeScope()
            let x = noise 22 [| 2L; 1L; 28L; 28L |]
            let method = ExtremalPerturbation(iterations = 400, areaWeightGrowth = 1.0035 * 1.0035, jitter = false)
            let explain (model: nn.Module<Tensor, Tensor>) =
                use e = method.Explain(model, x, tensor([| 0L; 0L |]), ExplainOptions())
                e.Maps.detach().clone()
            let a = explain (new BoxEnergyNet(28, 15, 4, 9, 9, 1.0))
            let b = explain (new BoxEnergyNet(28, 3, 16, 9, 9, 1.0))
            let ssim = Ssim.Mean(a, b, dataRange = 1.0)
            for v in ssim do Expect.isLessThan v 0.6 $"SSIM between the maps of the two models {v:F3}"
        }
    ]
