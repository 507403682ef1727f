/// AGI (Pan et al. 2021, Algorithm 1) on linear models, where every walk can be followed by hand.
module AdversarialGradientIntegrationTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open TestModels

let private logit = ExplainOptions(Output = OutputFunction.Logit)

/// The closed form on logits W x with logit output: the walk to false class j moves by eps sign(w_j) at every
/// step, so it stops after n_j = min(M, first k >= 0 with argmax W (x + k eps sign(w_j)) = j) steps and adds
/// -eps n_j w_t (.) sign(w_j); the map is the sum over j.
let private linearAgi (w: float[,]) (x: float[]) (t: int) (classes: int list) (eps: float) (maxIterations: int) =
    let d = x.Length
    let logits (z: float[]) = Array.init (Array2D.length1 w) (fun c -> Array.fold2 (fun s wc zc -> s + wc * zc) 0.0 w.[c, *] z)
    let argmax (v: float[]) = v |> Array.mapi (fun i a -> i, a) |> Array.maxBy snd |> fst
    let map = Array.zeroCreate d
    for j in classes do
        let s = w.[j, *] |> Array.map (fun v -> float (sign v))
        let hit = [ 0 .. maxIterations - 1 ] |> List.tryFind (fun k -> argmax (logits (Array.map2 (fun xi si -> xi + float k * eps * si) x s)) = j)
        let n = defaultArg hit maxIterations
        for i in 0 .. d - 1 do map.[i] <- map.[i] - eps * float n * w.[t, i] * s.[i]
    map

[<Tests>]
let tests =
    testList "agi" [
        test "AGI on a linear logit model equals the closed form -eps sum_j n_j w_t (.) sign(w_j), n_j the first step at which the prediction is j (capped at M)" {
            use scope = NewDisposeScope()
            let w = array2D [ [ 1.0; -2.0; 0.5; 3.0 ]; [ -1.0; 1.5; 2.0; -0.5 ]; [ 0.5; 0.5; -1.0; 1.0 ]; [ 2.0; -1.0; -1.5; 0.0 ] ]
            let model = new LinearNet(Array2D.map float32 w)
            torch.manual_seed(7L) |> ignore
            let x = rand(6, 1, 1, 4) * 2.0 - 1.0
            let t = tensor([| 0L; 1L; 2L; 3L; 0L; 2L |])
            let eps, m = 0.125, 12
            use e = AdversarialGradientIntegration(falseClasses = 3, epsilon = eps, maxIterations = m).Explain(model, x, t, logit)
            let xs = toArray (x.reshape(6, 4))
            let maps = toArray (e.Maps.reshape(6, 4))
            let ts = [| 0; 1; 2; 3; 0; 2 |]
            for b in 0 .. 5 do
                let expected = linearAgi w xs.[b * 4 .. b * 4 + 3] ts.[b] ([ 0 .. 3 ] |> List.filter ((<>) ts.[b])) eps m
                for i in 0 .. 3 do
                    Expect.floatClose { absolute = 1e-5; relative = 1e-5 } maps.[b * 4 + i] expected.[i] $"input {b}, feature {i}"
            Expect.all (toArray e.Diagnostics.["mean_steps"]) (fun s -> s >= 0.0 && s <= float m) "steps within [0, M]"
        }

        test "AGI with two classes: n = min(M, floor(G / (eps (w_j - w_t).sign(w_j))) + 1) steps for the gap G = l_t - l_j >= 0, the map is -eps n w_t (.) sign(w_j); an unreachable class takes M steps" {
            use scope = NewDisposeScope()
            // w_1 - w_0 = [-3, 3], sign(w_1) = [-1, 1]: each step raises l_1 - l_0 by 6 eps; G = 3 (0.9 - 0.15) = 2.25, so n = floor(3.75) + 1 = 4
            let model = new LinearNet(array2D [ [ 1.0f; -1.0f ]; [ -2.0f; 2.0f ] ])
            use e = AdversarialGradientIntegration(falseClasses = 1, epsilon = 0.1, maxIterations = 20).Explain(model, tensor([| 0.9f; 0.15f |]).view(1, 1, 1, 2), tensor([| 0L |]), logit)
            Expect.equal (toArray e.Diagnostics.["mean_steps"]) [| 4.0 |] "n = 4"
            Expect.equal (toArray e.Diagnostics.["attack_success_fraction"]) [| 1.0 |] "reached"
            let maps = toArray e.Maps
            Expect.floatClose { absolute = 1e-6; relative = 1e-5 } maps.[0] 0.4 "-eps n w_00 sign(w_10) = -0.1 4 1 (-1)"
            Expect.floatClose { absolute = 1e-6; relative = 1e-5 } maps.[1] 0.4 "-eps n w_01 sign(w_11) = -0.1 4 (-1) 1"
            // w_1 = [0.5, 0]: each step (+eps on feature 0) raises l_0 - l_1 by 0.5 eps, so class 1 is never reached
            use stuck = AdversarialGradientIntegration(falseClasses = 1, epsilon = 0.1, maxIterations = 7).Explain(new LinearNet(array2D [ [ 1.0f; 0.0f ]; [ 0.5f; 0.0f ] ]), tensor([| 1.0f; 0.3f |]).view(1, 1, 1, 2), tensor([| 0L |]), logit)
            Expect.equal (toArray stuck.Diagnostics.["mean_steps"]) [| 7.0 |] "M steps"
            Expect.equal (toArray stuck.Diagnostics.["attack_success_fraction"]) [| 0.0 |] "never reached"
            Expect.floatClose { absolute = 1e-6; relative = 1e-5 } (toArray stuck.Maps).[0] (-0.7) "-eps M w_00 sign(w_10)"
            Expect.equal (toArray stuck.Maps).[1] 0.0 "no move, no gradient"
        }

        test "AGI gives exactly zero to features the model ignores (probability output, sampled false classes)" {
            use scope = NewDisposeScope()
            let w = Array2D.init 6 5 (fun i j -> if j >= 3 then 0.0f else float32 ((i * 3 + j) % 7) / 3.0f - 1.0f)
            let model = new LinearNet(w)
            use e = AdversarialGradientIntegration(falseClasses = 3).Explain(model, uniform 31 [| 3L; 1L; 1L; 5L |], tensor([| 0L; 4L; 2L |]), ExplainOptions())
            Expect.isTrue (e.Maps.reshape(3, 5).narrow(1, 3, 2).eq(Scalar.op_Implicit 0.0f).all().item<bool>()) "zero on ignored features"
            Expect.isTrue (e.Maps.reshape(3, 5).narrow(1, 0, 3).ne(Scalar.op_Implicit 0.0f).any().item<bool>()) "something elsewhere"
        }

        test "AGI: shape and diagnostics shape; same seed same map, another seed other false classes; an input's map does not depend on its batch or chunk size" {
            use scope = NewDisposeScope()
            let model = tinyNet 9 6 8 7
            let x = rand(5, 1, 2, 3)
            let t = tensor([| 0L; 1L; 6L; 3L; 5L |])
            let method = AdversarialGradientIntegration(falseClasses = 2, epsilon = 0.1, maxIterations = 6)
            let run seed batch = method.Explain(model, x, t, ExplainOptions(Seed = seed, BatchSize = batch, InputKeys = [| 10L; 11L; 12L; 13L; 14L |]))
            use a = run 1L 3
            use b = run 1L 3
            use c = run 2L 3
            Expect.sequenceEqual a.Maps.shape x.shape "shape"
            Expect.sequenceEqual a.Diagnostics.["mean_steps"].shape [| 5L |] "one diagnostic per input"
            Expect.isTrue (a.Maps.allclose(b.Maps, 0.0, 0.0)) "bit-identical"
            Expect.isFalse (a.Maps.allclose(c.Maps, 0.0, 0.0)) "the seed picks the false classes"
            use alone = method.Explain(model, x.narrow(0, 3, 1), t.narrow(0, 3, 1), ExplainOptions(Seed = 1L, BatchSize = 1000, InputKeys = [| 13L |]))
            expectCloseOnScale 1e-5 (a.Maps.narrow(0, 3, 1)) alone.Maps "batch invariance"
        }

        test "the live-tensor count stays flat over many AGI explanations" {
            let model = tinyNet 2 6 5 4
            let x = rand(3, 1, 2, 3)
            let t = tensor([| 0L; 1L; 3L |])
            let explain () =
                use e = AdversarialGradientIntegration(falseClasses = 2, maxIterations = 4).Explain(model, x, t, ExplainOptions(BatchSize = 4))
                ()
            explain ()
            let before = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            for _ in 1 .. 5 do explain ()
            Expect.equal DisposeScopeManager.Statistics.ThreadTotalLiveCount before "no tensor leaks per explanation"
        }
    ]
