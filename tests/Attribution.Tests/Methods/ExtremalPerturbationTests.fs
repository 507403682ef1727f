/// Extremal Perturbations on models whose answer is known: a logit that sees only the texture inside a box (the mask
/// must settle on the box with the requested area), the smooth max mask and the blur pyramid in closed form.
module ExtremalPerturbationTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Metrics

/// Logits [c sum_{box} (x - 1/2)^2, 0]: the texture energy inside a box. Blurring noise lowers it, so preserving exactly
/// the box's pixels (and nothing else matters) maximises logit 0. c = 10 makes the logit fall by about 50 when the box is
/// blurred, the order of a trained classifier's logit margin (lambda = 300 is calibrated against logits: with c = 1 the
/// reward's gradient is 25 times weaker than the area term's and the mask goes wherever the sort breaks ties).
type BoxEnergyNet(side: int, top: int, left: int, height: int, width: int, ?scale: float) =
    inherit nn.Module<Tensor, Tensor>("box_energy_net")
    let scale = defaultArg scale 10.0
    let box =
        let m = zeros(int64 side, int64 side)
        m.narrow(0L, int64 top, int64 height).narrow(1L, int64 left, int64 width).fill_(Scalar.op_Implicit 1.0f) |> ignore
        m
    member _.Box = box
    override _.forward(x) =
        use scope = NewDisposeScope()
        let s = ((x - 0.5).square() * box.``to``(x.device)).sum([| 1L; 2L; 3L |]) * scale
        stack([| s; zeros_like(s) |], 1L).MoveToOuterDisposeScope()

let private noise seed (shape: int64[]) =
    use g = new Generator(uint64 seed, CPU)
    rand(shape, generator = g)

let private sizes (struct (step: int, sigma: float, maxBlur: float)) = step, sigma, maxBlur

let private scalar (t: Tensor) = t.``to``(ScalarType.Float64).item<float>()

[<Tests>]
let tests =
    testList "extremal_perturbation" [
        test "default sizes scale TorchRay's step 7, sigma 21, sigma_max 20 at 224 px with the image side, sigma_max at least L - 1 px" {
            let ep = ExtremalPerturbation()
            Expect.equal (ep.SizesFor(224L, 224L) |> sizes) (7, 21.0, 20.0) "224 px: TorchRay's values"
            // sigma_max = max(20 S / 224, L - 1): the finest of the 8 levels is at least a pixel wide.
            Expect.equal (ep.SizesFor(28L, 28L) |> sizes) (1, 2.625, 7.0) "28 px"
            Expect.equal (ep.SizesFor(56L, 56L) |> sizes) (2, 5.25, 7.0) "56 px"
            Expect.equal (ep.SizesFor(112L, 112L) |> sizes) (4, 10.5, 10.0) "112 px: the scaled value"
            Expect.equal (ExtremalPerturbation(step = 3, sigma = 4.0, maxBlur = 1.0).SizesFor(28L, 28L) |> sizes) (3, 4.0, 1.0) "explicit sizes win"
        }

        test "smooth max mask of one grid point: w e^(20 w) / (e^(20 w) + K - 1) with w = exp(-2 (d / sigma - 1/2)^2)" {
            use scope = NewDisposeScope()
            // step 1, sigma 2: radius r = 1 + ceil(2) = 3, K = 7^2 = 49 neighbours per pixel; grid point i sits on pixel i.
            use generator = new SmoothMask(21L, 21L, 1, 2.0, CPU, ScalarType.Float64)
            let p = zeros([| 1L; 1L; 21L; 21L |], dtype = ScalarType.Float64)
            p.[0L, 0L, 10L, 10L] <- tensor(1.0)
            let m = generator.Generate(p)
            let expected d =
                let w = exp (-2.0 * (max (d / 2.0 - 0.5) 0.0) ** 2.0)
                w * exp (20.0 * w) / (exp (20.0 * w) + 48.0)
            Expect.floatClose Accuracy.high (scalar m.[0L, 0L, 10L, 13L]) (expected 3.0) "3 pixels right of the point"
            Expect.floatClose Accuracy.high (scalar m.[0L, 0L, 12L, 11L]) (expected (sqrt 5.0)) "diagonal neighbour"
            Expect.floatClose Accuracy.high (scalar m.[0L, 0L, 10L, 10L]) (expected 0.0) "on the point (flat top: weight 1)"
            Expect.equal (scalar m.[0L, 0L, 10L, 18L]) 0.0 "8 pixels away: outside every neighbourhood"
            // A grid of ones: every neighbour inside the grid has value w(d), every one outside 0 (it still counts in the soft max).
            let onesMask = generator.Generate(ones([| 1L; 1L; 21L; 21L |], dtype = ScalarType.Float64))
            let expectedOnes y x =
                let inside = [ for gy in y - 3 .. y + 3 do
                                 for gx in x - 3 .. x + 3 do
                                     if gy >= 0 && gy < 21 && gx >= 0 && gx < 21 then
                                         let w = exp (-2.0 * (max (sqrt (float ((y - gy) * (y - gy) + (x - gx) * (x - gx))) / 2.0 - 0.5) 0.0) ** 2.0)
                                         yield w ]
                let numerator = inside |> List.sumBy (fun w -> w * exp (20.0 * w))
                numerator / ((inside |> List.sumBy (fun w -> exp (20.0 * w))) + float (49 - inside.Length))
            for y, x in [ 10, 10; 0, 0; 0, 9; 20, 19 ] do
                Expect.floatClose Accuracy.high (scalar onesMask.[0L, 0L, int64 y, int64 x]) (expectedOnes y x) $"grid of ones at ({y}, {x})"
            Expect.equal (scalar (generator.Generate(zeros([| 1L; 1L; 21L; 21L |], dtype = ScalarType.Float64)).abs().max())) 0.0 "zeros give zero"
        }

        test "blur pyramid: mask 1 is the input, mask 0 the maximal blur, mask 1/2 with 3 levels the half blur" {
            use scope = NewDisposeScope()
            let x = noise 1 [| 2L; 3L; 12L; 12L |]
            use pyramid = new BlurPyramid(x, 3, 2.0)
            let blur sigma = GaussianBlur.Apply(x, sigma, 2 * int (ceil (4.0 * sigma)) + 1)
            let full (v: float) = torch.full([| 2L; 1L; 12L; 12L |], Scalar.op_Implicit v)
            Expect.isTrue (pyramid.Apply(full 1.0).allclose(x, 0.0, 0.0)) "m = 1 keeps the input exactly"
            TestModels.expectCloseOnScale 1e-6 (pyramid.Apply(full 0.0)) (blur 2.0) "m = 0 is blurred by sigma_max"
            TestModels.expectCloseOnScale 1e-6 (pyramid.Apply(full 0.5)) (blur 1.0) "m = 1/2 is level 1 of 3: sigma_max / 2"
            TestModels.expectCloseOnScale 1e-6 (pyramid.Apply(full 0.75)) ((blur 1.0 + x) / 2.0) "m = 3/4 interpolates levels 1 and 2"
        }

        test "the preserving mask settles on the box the logit sees, with the requested area (no jitter)" {
            use scope = NewDisposeScope()
            // A 12x12 box at rows 6..17, columns 10..21 of a 28x28 noise image: 144 pixels, area 144/784 = 0.184. The logit is
            // unscaled (a few logits, as a trained CNN's): the reward and the area term balance as on real models. The box is
            // large beside the smoothing (sigma 2.625). A smooth mask cannot have a square's corners, so one of exactly the box's
            // area misses them (measured: 0.896 of the box, the misses all at two corners); the first case asks for a quarter more
            // area than the box, and the mask must then cover it and stay mostly inside it.
            // 400 iterations with lambda growing by 1.0035^2 end at the lambda of the default 800 (fewer steps, same hardening).
            let model = new BoxEnergyNet(28, 6, 10, 12, 12, 1.0)
            let box = model.Box.``to``(ScalarType.Float64)
            // As in TorchRay, the area is a fraction of the padded canvas (34x34 = 1156 pixels at 28 px, step 1, sigma 2.625):
            // a mask inside the image that keeps 64 pixels has area 64/1156; `imageArea` is the fraction of the image it keeps.
            for imageArea, seed in [ 1.25 * 144.0 / 784.0, 2; 0.35, 3 ] do
                let area = imageArea * 784.0 / 1156.0
                let x = noise seed [| 1L; 1L; 28L; 28L |]
                let method = ExtremalPerturbation(area = area, iterations = 400, areaWeightGrowth = 1.0035 * 1.0035, jitter = false)
                use e = method.Explain(model, x, tensor([| 0L |]), ExplainOptions())
                let on = e.Maps.[0L, 0L].ge(Scalar.op_Implicit 0.5).``to``(ScalarType.Float64)
                // The area term is a penalty that the reward pulls against, so the area is met approximately: within 25%.
                let kept = scalar (on.mean())
                Expect.isLessThan (abs (kept - imageArea) / imageArea) 0.25 $"area {area:F3}: fraction of mask >= 0.5 is {kept:F4} (image area {imageArea:F3})"
                let meanArea = scalar e.Diagnostics.["mask_area"]
                Expect.isLessThan (abs (meanArea - imageArea) / imageArea) 0.25 $"area {area:F3}: mean of the mask is {meanArea:F4} (image area {imageArea:F3})"
                let boxCovered = scalar ((on * box).sum() / box.sum())
                Expect.isGreaterThan boxCovered 0.9 $"area {area:F3}: the box is kept ({boxCovered:F3} of it)"
                if imageArea < 0.25 then
                    // A mask larger than the box must keep some pixels outside it: at best box / kept of them are inside.
                    let inside = scalar ((on * box).sum() / on.sum())
                    let attainable = min 1.0 (scalar (box.sum() / on.sum()))
                    Expect.isGreaterThan inside (0.9 * attainable) $"kept pixels inside the box ({inside:F3}; at most {attainable:F3} can be)"
                use noGrad = no_grad()
                let blurred = scalar (model.forward(GaussianBlur.Apply(x, 2.5, 21)).[0L, 0L])
                Expect.isGreaterThan (scalar e.Diagnostics.["reward"]) (blurred + 0.5 * (scalar (model.forward(x).[0L, 0L]) - blurred)) "the kept box recovers most of the logit"
        }

        test "maps have the inputs' shape, lie in [0, 1], are equal across channels, identical on a rerun and independent of the batch" {
            use scope = NewDisposeScope()
            let model = new BoxEnergyNet(20, 3, 5, 6, 6)
            let x = noise 3 [| 3L; 3L; 20L; 20L |]
            let t = tensor([| 0L; 1L; 0L |])
            let method = ExtremalPerturbation(iterations = 60)
            use a = method.Explain(model, x, t, ExplainOptions())
            use b = method.Explain(model, x, t, ExplainOptions())
            use c = method.Explain(model, x, t, ExplainOptions(BatchSize = 1))
            Expect.sequenceEqual a.Maps.shape x.shape "shape"
            Expect.isTrue (a.Maps.ge(Scalar.op_Implicit 0.0).all().item<bool>() && a.Maps.le(Scalar.op_Implicit 1.0).all().item<bool>()) "in [0, 1]"
            Expect.isTrue (a.Maps.select(1L, 0L).allclose(a.Maps.select(1L, 2L), 0.0, 0.0)) "one mask for every channel"
            Expect.isTrue (a.Maps.eq(b.Maps).all().item<bool>()) "bit-identical on a rerun"
            TestModels.expectCloseOnScale 1e-5 a.Maps c.Maps "same map alone or in a batch"
            Expect.sequenceEqual a.Diagnostics.["mask_area"].shape [| 3L |] "one area per input"
        }

        test "the model's parameters are left as they were (values and requires_grad) and 56x56 inputs work" {
            use scope = NewDisposeScope()
            torch.manual_seed 4L |> ignore
            let model = new Attribution.Models.SmallResNet(Attribution.Models.SmallResNet.Shape(ImageSize = 56))
            model.eval() |> ignore
            let before = model.parameters() |> Seq.map (fun p -> p.detach().clone()) |> Seq.toArray
            use e = ExtremalPerturbation(iterations = 4).Explain(model, noise 5 [| 2L; 1L; 56L; 56L |], tensor([| 3L; 7L |]), ExplainOptions())
            Expect.sequenceEqual e.Maps.shape [| 2L; 1L; 56L; 56L |] "shape"
            for p, q in Seq.zip (model.parameters()) before do
                Expect.isTrue p.requires_grad "requires_grad restored"
                Expect.isTrue (p.eq(q).all().item<bool>()) "values unchanged"
        }
    ]
