/// Integrated Gradients with `steps: auto` against integrals known in closed form, and the completeness gap of the
/// quadrature going to 0 as its points grow.
module AdaptiveIntegratedGradientsTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Sampling

/// Logits [sin(c s), 0] with s = sum of x's features. Along the path a x, d/da f = c s cos(c a s), so IG is known:
/// IG_i = x_i sin(c s) / s, summing to f(x) - f(0) = sin(c s). A quadrature Q of int_0^1 c s cos(c a s) da gives the
/// map x_i Q / s, so for x >= 0 its L1 distance from the exact map is |Q - sin(c s)|: the completeness gap exactly.
type SineOfSum(c: float) =
    inherit nn.Module<Tensor, Tensor>("sine_of_sum")
    override _.forward(x) =
        let value = (x.flatten(1L).sum([| 1L |]) * c).sin()
        stack([| value; zeros_like(value) |], 1L)

/// Counts forward passes (each is one chunk of points, or one chunk of f(x) / f(baseline) values).
type Counted(inner: nn.Module<Tensor, Tensor>) =
    inherit nn.Module<Tensor, Tensor>("counted")
    member val Calls = 0 with get, set
    override this.forward(x) =
        this.Calls <- this.Calls + 1
        inner.forward(x)

let private f64 = ScalarType.Float64
let private logit = ExplainOptions(OutputFunction.Logit, 4096, 3L)
let private values (t: Tensor) = t.``to``(f64).cpu().data<float>().ToArray()
let private uniform (seed: int) (shape: int64[]) =
    use g = new Generator(uint64 seed, CPU)
    rand(shape, dtype = f64, generator = g)

/// Non-negative inputs of the given shape whose features sum to `sums` (one per input): SineOfSum's rise sin(c s) is
/// then chosen away from 0, where a relative tolerance would ask for an exact sum.
let private withSums (seed: int) (shape: int64[]) (sums: float[]) =
    let u = uniform seed shape + 0.1
    u * (tensor(sums, dtype = f64) / u.flatten(1L).sum([| 1L |])).view(-1L, 1L, 1L, 1L)

/// The exact IG map of SineOfSum c at inputs [B, ...]: x_i sin(c s) / s.
let private exactMap (c: float) (x: Tensor) =
    let s = x.flatten(1L).sum([| 1L |])
    x * ((s * c).sin() / s).view(-1L, 1L, 1L, 1L)

let private gapOf (e: Explanation) = values e.Diagnostics.["completeness_gap"]

let private config = { FsCheckConfig.defaultConfig with maxTest = 12 }

[<Tests>]
let tests =
    testList "methods/integrated gradients, steps auto" [
        test "f = sin(c sum x), left Riemann rule: every input meets the tolerance, at the first count of the doubling that does, with fixed-step IG's map at that count" {
            use scope = NewDisposeScope()
            let c = 2.0
            use model = new SineOfSum(c)
            // c s from 0.5 to 7.5 rad: the left rule's error |g(1) - g(0)| / 2n over sin(c s) asks for about 32 to 2048 points
            let x = withSums 4 [| 6L; 1L; 2L; 3L |] ([| 0.5; 1.0; 1.5; 2.0; 2.5; 7.5 |] |> Array.map (fun cs -> cs / c))
            let targets = zeros(6L, dtype = ScalarType.Int64)
            let tolerance = 2e-3
            let auto = AdaptiveIntegratedGradients(tolerance, 4096, IntegrationRule.RiemannLeft)
            use e = auto.Explain(model, x, targets, logit)
            let steps = values e.Diagnostics.["quadrature_steps"]
            let rise = values ((x.flatten(1L).sum([| 1L |]) * c).sin().abs())
            Expect.equal (values e.Diagnostics.["tolerance_unmet"]) (Array.zeroCreate 6) "no input reached max_steps without meeting the tolerance"
            Expect.isGreaterThan (Array.distinct steps).Length 1 "the inputs stop at different counts"
            for level in auto.Levels do
                use fixedStep = Presets.IntegratedGradients(level, IntegrationRule.RiemannLeft).Explain(model, x, targets, logit)
                let gaps = gapOf fixedStep
                for i in 0 .. 5 do
                    let meets = gaps.[i] <= tolerance * rise.[i]
                    if float level < steps.[i] then Expect.isFalse meets $"input {i} did not meet the tolerance at {level} points, so it went on"
                    elif float level = steps.[i] then
                        Expect.isTrue meets $"input {i} meets it at its count {level}"
                        let same = e.Maps.narrow(0L, int64 i, 1L).allclose(fixedStep.Maps.narrow(0L, int64 i, 1L), 1e-12, 1e-15)
                        Expect.isTrue same $"input {i}'s map is fixed-step IG's at {level} points"
        }

        test "f = sin(c sum x): the reported gap is the map's true error, its L1 distance from the exact IG map, and the relative gap is at most the tolerance" {
            use scope = NewDisposeScope()
            let c = 1.5
            use model = new SineOfSum(c)
            let x = withSums 8 [| 5L; 1L; 3L; 3L |] ([| 1.0; 2.0; 2.5; 7.5; 8.0 |] |> Array.map (fun cs -> cs / c))
            let targets = zeros(5L, dtype = ScalarType.Int64)
            for rule in [ IntegrationRule.RiemannLeft; IntegrationRule.RiemannTrapezoid; IntegrationRule.GaussLegendre ] do
                use e = AdaptiveIntegratedGradients(2e-3, 4096, rule).Explain(model, x, targets, logit)
                let distance = values ((e.Maps - exactMap c x).abs().flatten(1L).sum([| 1L |]))
                let gap = gapOf e
                let rise = values ((x.flatten(1L).sum([| 1L |]) * c).sin().abs())
                let relative = values e.Diagnostics.["relative_completeness_gap"]
                for i in 0 .. 4 do
                    Expect.floatClose { absolute = 1e-13; relative = 1e-9 } gap.[i] distance.[i] $"{rule}, input {i}: gap = |map - exact|_1"
                    Expect.floatClose { absolute = 0.0; relative = 1e-12 } relative.[i] (gap.[i] / rise.[i]) $"{rule}, input {i}: relative gap = gap / |f(x) - f(0)|"
                    Expect.isLessThanOrEqual relative.[i] 2e-3 $"{rule}, input {i}: within the tolerance"
        }

        test "a smooth network of steep tanh units (probability output): auto meets 1e-6 with Gauss-Legendre, and its reported gap is the distance of its total from a 4096-point reference's" {
            use scope = NewDisposeScope()
            torch.manual_seed(23L) |> ignore
            let first = nn.Linear(6L, 16L)
            use model = nn.Sequential(nn.Flatten(), first, nn.Tanh(), nn.Linear(16L, 3L))
            model.``to``(f64) |> ignore
            model.eval()
            // weights 30x PyTorch's initialisation: each unit turns within a short stretch of the path, which 16 points miss
            using (torch.no_grad()) (fun _ -> first.weight.mul_(torch.tensor(30.0, dtype = f64)) |> ignore)
            let x = (uniform 12 [| 8L; 1L; 2L; 3L |] - 0.5) * 6.0
            let targets = tensor([| 0L; 1L; 2L; 0L; 1L; 2L; 0L; 1L |])
            let options = ExplainOptions(OutputFunction.Probability, 4096, 3L)
            use e = AdaptiveIntegratedGradients(1e-6, 1024).Explain(model, x, targets, options)
            use reference = Presets.IntegratedGradients(4096).Explain(model, x, targets, options)
            let referenceTotal = values (reference.Maps.flatten(1L).sum([| 1L |]))
            let total = values (e.Maps.flatten(1L).sum([| 1L |]))
            let rise = values (OutputValues.Of(model, x, targets, OutputFunction.Probability, 64) - OutputValues.Of(model, zeros_like(x), targets, OutputFunction.Probability, 64))
            let gap = gapOf e
            let steps = values e.Diagnostics.["quadrature_steps"]
            let relative = values e.Diagnostics.["relative_completeness_gap"]
            printfn $"steps auto on a tanh network: points per input %A{steps}; relative gaps %A{relative}"
            Expect.isGreaterThan (Array.max steps) 16.0 "some inputs needed more than the first round"
            for i in 0 .. 7 do
                Expect.isLessThan (abs (referenceTotal.[i] - rise.[i])) (1e-10 * abs rise.[i] + 1e-15) $"input {i}: the reference is complete to 1e-10"
                Expect.isLessThanOrEqual gap.[i] (1e-6 * abs rise.[i]) $"input {i}: gap within tolerance"
                Expect.floatClose { absolute = 2e-10 * abs rise.[i]; relative = 1e-6 } gap.[i] (abs (total.[i] - referenceTotal.[i])) $"input {i}: the gap is the distance from the reference's total"
        }

        test "an input that cannot meet the tolerance stops at max_steps, with tolerance_unmet 1 and its gap above the bound" {
            use scope = NewDisposeScope()
            use model = new SineOfSum(2.0)
            let x = uniform 5 [| 3L; 1L; 2L; 2L |] + 0.5
            use e = AdaptiveIntegratedGradients(1e-9, 32, IntegrationRule.RiemannLeft).Explain(model, x, zeros(3L, dtype = ScalarType.Int64), logit)
            Expect.equal (values e.Diagnostics.["quadrature_steps"]) [| 32.0; 32.0; 32.0 |] "stopped at max_steps"
            Expect.equal (values e.Diagnostics.["tolerance_unmet"]) [| 1.0; 1.0; 1.0 |] "and said so"
            for r in values e.Diagnostics.["relative_completeness_gap"] do Expect.isGreaterThan r 1e-9 "the gap is above the tolerance"
        }

        test "the rounds are batched across inputs: 2 forward passes for f(x) and f(0), then 3 a round (one chunk of points of every open input, and their f(x), f(0)), whatever the number of inputs" {
            use scope = NewDisposeScope()
            for count in [ 1L; 8L ] do
                use inner = new SineOfSum(2.0)
                use model = new Counted(inner)
                let x = uniform 6 [| count; 1L; 2L; 2L |] + 0.5
                // 8 inputs x at most 256 points fit one chunk of 4096 points
                use e = AdaptiveIntegratedGradients(1e-4, 256, IntegrationRule.RiemannLeft).Explain(model, x, zeros(count, dtype = ScalarType.Int64), logit)
                let rounds = values e.Diagnostics.["quadrature_steps"] |> Array.max |> fun s -> int (System.Math.Log2(s / 16.0)) + 1
                Expect.equal model.Calls (2 + 3 * rounds) $"{count} inputs, {rounds} rounds"
        }

        testPropertyWithConfig config "the left Riemann rule's completeness gap on sin(c sum x) is at most max |g'| / 2n = c^2 s^2 / 2n, so it goes to 0 as n grows" <| fun (seed: int) (cTimes10: byte) ->
            use scope = NewDisposeScope()
            let c = 0.1 + float cTimes10 / 64.0
            use model = new SineOfSum(c)
            let x = uniform ((seed &&& 0x7fffffff) % 10000) [| 4L; 1L; 2L; 2L |]
            let s = values (x.flatten(1L).sum([| 1L |]))
            let targets = zeros(4L, dtype = ScalarType.Int64)
            for n in [ 16; 64; 256; 1024 ] do
                use e = Presets.IntegratedGradients(n, IntegrationRule.RiemannLeft).Explain(model, x, targets, logit)
                gapOf e |> Array.iteri (fun i gap ->
                    Expect.isLessThanOrEqual gap (c * c * s.[i] * s.[i] / (2.0 * float n) + 1e-13) $"n = {n}, input {i}")

        testPropertyWithConfig config "the Gauss-Legendre rule's completeness gap on sin(c sum x) falls below 1e-12 by 64 points (the integrand is analytic)" <| fun (seed: int) (cTimes10: byte) ->
            use scope = NewDisposeScope()
            let c = 0.1 + float cTimes10 / 64.0
            use model = new SineOfSum(c)
            let x = uniform ((seed &&& 0x7fffffff) % 10000) [| 4L; 1L; 2L; 2L |]
            use e = Presets.IntegratedGradients(64).Explain(model, x, zeros(4L, dtype = ScalarType.Int64), logit)
            for gap in gapOf e do Expect.isLessThan gap 1e-12 "gap at 64 points"
    ]
