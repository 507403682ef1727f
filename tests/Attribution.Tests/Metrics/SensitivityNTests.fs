/// Sensitivity-N on models whose answer is known.
module SensitivityNTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Metrics
open TestModels

[<Tests>]
let tests =
    testList "Sensitivity-N" [
        test "a linear logit with attributions w (.) x: correlation 1 for every N" {
            use scope = NewDisposeScope()
            use g = new Generator(7UL, CPU)
            let d = 16
            let w = randn([| 2L; int64 d |], generator = g)
            let model = new LinearNet(Array2D.init 2 d (fun i j -> w.[int64 i, int64 j].item<float32>()))
            let x = randn([| 8L; 1L; 1L; int64 d |], generator = g)
            let maps = x * w.[0L].view(1L, 1L, 1L, int64 d)
            let result = SensitivityN([ 1; 2; 4; 8; 15 ], 50).Evaluate(model, x, maps, zeros(8L, dtype = ScalarType.Int64), 3L, CPU)
            Expect.sequenceEqual result.N [| 1; 2; 4; 8; 15 |] "sizes"
            for k in 0 .. result.N.Length - 1 do
                Expect.floatClose Accuracy.medium result.MeanCorrelation.[k] 1.0 $"N = {result.N.[k]}"
                Expect.equal result.Undefined.[k] 0 "every correlation defined"
        }

        test "random attributions: mean correlation near 0" {
            use scope = NewDisposeScope()
            use g = new Generator(11UL, CPU)
            let d = 64
            let w = randn([| 2L; int64 d |], generator = g)
            let model = new LinearNet(Array2D.init 2 d (fun i j -> w.[int64 i, int64 j].item<float32>()))
            let x = randn([| 30L; 1L; 1L; int64 d |], generator = g)
            let maps = randn([| 30L; 1L; 1L; int64 d |], generator = g)
            let result = SensitivityN([ 4; 16; 32 ], 200).Evaluate(model, x, maps, zeros(30L, dtype = ScalarType.Int64), 5L, CPU)
            for r in result.MeanCorrelation do
                Expect.isTrue (abs r < 0.15) $"mean correlation {r} (sd about 0.02 under independence)"
        }

        test "log grid: 1 up to 80% of the features, increasing, no repeats" {
            let grid = SensitivityN.LogGrid(784)
            Expect.equal grid.[0] 1 "starts at 1"
            Expect.equal grid.[grid.Length - 1] 627 "ends at round(0.8 * 784)"
            Expect.isTrue (grid |> Array.pairwise |> Array.forall (fun (a, b) -> b > a)) "strictly increasing"
        }
    ]
