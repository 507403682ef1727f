/// The Taylor framework (Deng et al. 2020) on polynomials, where every term is known in closed form.
module TaylorTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Metrics
open TestModels

/// A monomial c * prod_i x_i^alpha_i.
type Monomial = { C: float; Alpha: int[] }

/// f(x) = sum of monomials, on inputs [B, 1, 1, d]; one logit. Works in the inputs' dtype.
type PolynomialNet(monomials: Monomial list) =
    inherit nn.Module<Tensor, Tensor>("polynomial_net")
    override _.forward(x) =
        use scope = NewDisposeScope()
        let v = x.flatten(1)
        let term (m: Monomial) =
            m.Alpha |> Array.mapi (fun i a -> v.select(1, int64 i).pow(Scalar.op_Implicit a)) |> Array.reduce (fun (p: Tensor) q -> p * q) |> fun (p: Tensor) -> p * m.C
        (monomials |> List.map term |> List.reduce (fun (a: Tensor) b -> a + b)).unsqueeze(1).MoveToOuterDisposeScope()

let private mono c alpha = { C = c; Alpha = alpha }
let private degree m = Array.sum m.Alpha
let private variables m = m.Alpha |> Array.filter (fun a -> a > 0) |> Array.length
let private value (x: float[]) m = m.C * (Array.mapi (fun i a -> pown x.[i] a) m.Alpha |> Array.fold (*) 1.0)

/// Linear, square, pairwise and cubic terms (independent and interactive) and a constant, on 4 features.
let private cubic =
    [ mono 2.0 [| 0; 0; 0; 0 |]
      mono 0.7 [| 1; 0; 0; 0 |]; mono -1.2 [| 0; 1; 0; 0 |]; mono 0.4 [| 0; 0; 0; 1 |]
      mono 0.9 [| 2; 0; 0; 0 |]; mono -0.5 [| 0; 0; 2; 0 |]
      mono 1.5 [| 1; 1; 0; 0 |]; mono -0.8 [| 0; 1; 1; 0 |]; mono 0.6 [| 1; 0; 0; 1 |]
      mono 0.3 [| 3; 0; 0; 0 |]; mono -0.6 [| 0; 0; 0; 3 |]
      mono 0.5 [| 1; 1; 1; 0 |]; mono -0.4 [| 2; 0; 0; 1 |] ]

let private quadratic = cubic |> List.filter (fun m -> degree m <= 2)

/// Per feature, the sum over the monomials that pass `keep` of weight(m, i) * m(x): the closed form of every map here.
let private closedForm (monomials: Monomial list) keep (weight: Monomial -> int -> float) (x: float[]) =
    Array.init x.Length (fun i -> monomials |> List.filter keep |> List.sumBy (fun m -> weight m i * value x m))

let private own m i = if m.Alpha.[i] > 0 then 1.0 else 0.0
let private euler m i = float m.Alpha.[i] / float (degree m)
let private ofOrder k m = degree m = k
let private independentOf k m = degree m = k && variables m = 1
let private interactiveOf k m = degree m = k && variables m > 1

let private logit = ExplainOptions(Output = OutputFunction.Logit, BatchSize = 5)
let private inputs () =
    use g = new Generator(11UL, CPU)
    rand([| 3L; 1L; 1L; 4L |], dtype = ScalarType.Float64, generator = g) * 2.0 - 1.0
let private rows (t: Tensor) = let a = toArray t in let d = a.Length / 3 in Array.init 3 (fun b -> a.[b * d .. b * d + d - 1])
let private close (actual: Tensor) (expected: float[][]) what =
    let a = rows actual
    for b in 0 .. 2 do
        for i in 0 .. expected.[b].Length - 1 do
            Expect.floatClose { absolute = 1e-9; relative = 1e-9 } a.[b].[i] expected.[b].[i] $"{what}, input {b}, feature {i}"
let private perInput (f: float[] -> float[]) x = rows x |> Array.map f
let private sums (maps: float[][]) = maps |> Array.map Array.sum

[<Tests>]
let tests =
    testList "taylor" [
        test "Order-3 decomposition of a cubic at x~ = 0: first, independent and interactive terms (Euler split) equal the closed form; remainder 0" {
            use scope = NewDisposeScope()
            let model = new PolynomialNet(cubic)
            let x = inputs ()
            use t = TaylorDecomposition.Compute(model, x, tensor([| 0L; 0L; 0L |]), logit, 0.0, 3)
            close t.First (perInput (closedForm cubic (ofOrder 1) own) x) "first order"
            for k in 2 .. 3 do
                close (t.Independent k) (perInput (closedForm cubic (independentOf k) own) x) $"independent, order {k}"
                close (t.Interactive k) (perInput (closedForm cubic (interactiveOf k) euler) x) $"interactive, order {k}"
            Expect.isTrue (t.Remainder.abs().max().ToDouble() < 1e-12) "a cubic has nothing beyond order 3"
        }

        test "The remainder is what lies beyond the order: 0 for a quadratic at order 2, the cubic terms at order 2, the quartic term at order 3" {
            use scope = NewDisposeScope()
            let x = inputs ()
            let targets = tensor([| 0L; 0L; 0L |])
            let remainder monomials order =
                use t = TaylorDecomposition.Compute(new PolynomialNet(monomials), x, targets, logit, 0.0, order)
                toArray t.Remainder
            let beyond monomials order = rows x |> Array.map (fun xs -> monomials |> List.filter (fun m -> degree m > order) |> List.sumBy (value xs))
            let quartic = mono 0.25 [| 0; 0; 0; 4 |] :: mono 1.1 [| 1; 0; 1; 2 |] :: cubic
            for (name, monomials, order) in [ ("quadratic", quadratic, 2); ("cubic", cubic, 2); ("quartic", quartic, 3); ("cubic", cubic, 1) ] do
                let expected = beyond monomials order
                Array.iteri2 (fun b a e -> Expect.floatClose { absolute = 1e-9; relative = 1e-9 } a e $"{name} at order {order}, input {b}") (remainder monomials order) expected
        }

        test "Around a nonzero baseline a quadratic a.x + x'Bx decomposes as g = a + 2 B x~, H = 2B: first (g Delta)_i, independent B_ii Delta_i^2, interactive Delta_i sum_(j != i) B_ij Delta_j" {
            use scope = NewDisposeScope()
            let x = inputs ()
            let baseline = 0.3
            let a = [| 0.7; -1.2; 0.0; 0.4 |]
            // symmetric B from the quadratic monomials: x_i^2 -> B_ii, x_i x_j -> B_ij = B_ji = c / 2
            let b = Array2D.zeroCreate 4 4
            for m in quadratic |> List.filter (ofOrder 2) do
                let idx = [ for i in 0 .. 3 do if m.Alpha.[i] > 0 then yield i ]
                match idx with
                | [ i ] -> b.[i, i] <- b.[i, i] + m.C
                | [ i; j ] -> b.[i, j] <- b.[i, j] + m.C / 2.0; b.[j, i] <- b.[j, i] + m.C / 2.0
                | _ -> failwith "quadratic"
            let g = Array.init 4 (fun i -> a.[i] + 2.0 * Seq.sum (seq { for j in 0 .. 3 -> b.[i, j] * baseline }))
            let deltas = rows x |> Array.map (Array.map (fun v -> v - baseline))
            use t = TaylorDecomposition.Compute(new PolynomialNet(quadratic), x, tensor([| 0L; 0L; 0L |]), logit, baseline, 2, keepHessian = true)
            close t.First (deltas |> Array.map (fun d -> Array.init 4 (fun i -> g.[i] * d.[i]))) "first order"
            close (t.Independent 2) (deltas |> Array.map (fun d -> Array.init 4 (fun i -> b.[i, i] * d.[i] * d.[i]))) "independent"
            close (t.Interactive 2) (deltas |> Array.map (fun d -> Array.init 4 (fun i -> d.[i] * Seq.sum (seq { for j in 0 .. 3 do if j <> i then yield b.[i, j] * d.[j] })))) "interactive"
            let h = toArray (match t.Hessian with null -> failwith "no Hessian" | h -> h)
            for bi in 0 .. 2 do
                for i in 0 .. 3 do
                    for j in 0 .. 3 do Expect.floatClose { absolute = 1e-9; relative = 1e-9 } h.[bi * 16 + i * 4 + j] (2.0 * b.[i, j]) $"H[{i},{j}]"
            Expect.isTrue (t.Remainder.abs().max().ToDouble() < 1e-12) "a quadratic has no remainder at order 2"
        }

        test "Gradient x Input gives monomial m alpha_i m(x), IG alpha_i / deg m m(x) (the Euler split), Occlusion-1 every monomial containing x_i in full" {
            use scope = NewDisposeScope()
            let model = new PolynomialNet(cubic)
            let x = inputs ()
            let targets = tensor([| 0L; 0L; 0L |])
            let nonConstant m = degree m > 0
            use gxi = Presets.GradientXInput().Explain(model, x, targets, logit)
            close gxi.Maps (perInput (closedForm cubic nonConstant (fun m i -> float m.Alpha.[i])) x) "gradient x input"
            use ig = Presets.IntegratedGradients().Explain(model, x, targets, logit)
            close ig.Maps (perInput (closedForm cubic nonConstant euler) x) "integrated gradients"
            use occ = Occlusion(1, 1, 1, 1).Explain(model, x, targets, logit)
            close occ.Maps (perInput (closedForm cubic nonConstant own) x) "occlusion-1"
            // IG is the order-3 Taylor attribution with all terms: the decomposition's Euler split is IG's split
            use taylor = TaylorAttribution(3).Explain(model, x, targets, logit)
            Expect.isTrue (taylor.Maps.allclose(ig.Maps, 1e-9, 1e-9)) "IG = first + independent + interactive shares, all orders"
        }

        test "Fidelity on a quadratic: IG has no error on any property; GxI errs by H_ii x_i^2 / 2 and the interactive share; Occlusion-1 assigns independent terms exactly but interactions twice" {
            use scope = NewDisposeScope()
            let model = new PolynomialNet(quadratic)
            let x = inputs ()
            let targets = tensor([| 0L; 0L; 0L |])
            let xs = rows x
            let indep2 = xs |> Array.map (closedForm quadratic (independentOf 2) own)
            let inter2 = xs |> Array.map (closedForm quadratic (interactiveOf 2) euler)
            let l1 (maps: float[][]) = maps |> Array.map (Array.sumBy abs)
            let expectReport (r: TaylorFidelityReport) (p1: float[]) (p2: float[]) (p3: float[]) name =
                for (actual, expected, what) in [ (r.ApproximationError, p1, "approximation"); (r.IndependentError, p2, "independent"); (r.InteractiveError, p3, "interactive") ] do
                    Array.iteri2 (fun b a e -> Expect.floatClose { absolute = 1e-9; relative = 1e-7 } a e $"{name}: {what} error, input {b}") (toArray actual) expected
            use ig = TaylorFidelity.Assess(Presets.IntegratedGradients(), model, x, targets, logit)
            expectReport ig [| 0.0; 0.0; 0.0 |] [| 0.0; 0.0; 0.0 |] [| 0.0; 0.0; 0.0 |] "IG"
            // GxI_i = g_i x_i + H_ii x_i^2 + sum_(j != i) H_ij x_i x_j: twice each second-order term
            use gxi = TaylorFidelity.Assess(Presets.GradientXInput(), model, x, targets, logit)
            expectReport gxi (Array.map2 (fun a b -> abs (a + b)) (sums indep2) (sums inter2)) (l1 indep2) (l1 inter2) "GxI"
            use occ = TaylorFidelity.Assess(Occlusion(1, 1, 1, 1), model, x, targets, logit)
            expectReport occ (sums inter2 |> Array.map abs) [| 0.0; 0.0; 0.0 |] (l1 inter2) "Occlusion-1"
            Expect.isTrue ((toArray gxi.IndependentScale |> Array.min) > 0.0 && (toArray gxi.InteractiveScale |> Array.min) > 0.0) "the test has terms of both kinds"
        }

        test "TaylorAttribution on a tanh network: the map sums to f(x) - f(x~) - remainder, order 1 is g(x~) (.) Delta, the remainder shrinks with the order near x~, chunking changes nothing" {
            use scope = NewDisposeScope()
            let model = tinyNet 5 6 8 3
            use g = new Generator(3UL, CPU)
            let x = (rand([| 4L; 1L; 1L; 6L |], dtype = ScalarType.Float32, generator = g) * 0.2 - 0.1)
            model.``to``(ScalarType.Float64) |> ignore
            let x = x.``to``(ScalarType.Float64)
            let targets = tensor([| 0L; 1L; 2L; 1L |])
            let options = ExplainOptions(Output = OutputFunction.Logit, BatchSize = 7)
            let remainders =
                [ for order in 1 .. 3 ->
                    use e = TaylorAttribution(order).Explain(model, x, targets, options)
                    let total = e.Maps.flatten(1).sum(1)
                    Expect.isTrue (total.allclose(e.Diagnostics.["difference"] - e.Diagnostics.["remainder"], 1e-10, 1e-12)) $"order {order}: map total"
                    toArray e.Diagnostics.["remainder"] |> Array.map abs |> Array.max ]
            Expect.isTrue (remainders.[1] < remainders.[0] && remainders.[2] < remainders.[1]) $"remainders {remainders}"
            use first = TaylorAttribution(1, TaylorTerms.First).Explain(model, x, targets, options)
            let z = zeros_like(x).requires_grad_(true)
            let f = model.forward(z).gather(1L, targets.unsqueeze(1)).sum()
            let grad = autograd.grad([| f |], [| z |]).[0]
            Expect.isTrue (first.Maps.allclose(grad * x, 1e-10, 1e-12)) "g(x~) (.) Delta"
            use a = TaylorAttribution(3).Explain(model, x, targets, options)
            use b = TaylorAttribution(3).Explain(model, x, targets, ExplainOptions(Output = OutputFunction.Logit, BatchSize = 1000))
            Expect.isTrue (a.Maps.allclose(b.Maps, 1e-12, 1e-14)) "chunk invariance"
        }
    ]
