/// Metrics on cases whose answer is known in advance.
module MetricTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Metrics
open TestModels

/// Logits [s, 0.05] with s = sum of the first k features: class 0 while they sum to more than 0.05.
type FirstFeaturesNet(k: int) =
    inherit nn.Module<Tensor, Tensor>("first_features")
    override _.forward(x) =
        let s = x.flatten(1).narrow(1, 0L, int64 k).sum([| 1L |])
        stack([| s; full_like(s, 0.05) |], 1L)

[<Tests>]
let tests =
    testList "metrics" [
        test "trapezoid AUC of known curves" {
            Expect.floatClose Accuracy.high (Auc.Trapezoid([ 0.0; 1.0 ], [ 1.0; 1.0 ])) 1.0 "constant"
            Expect.floatClose Accuracy.high (Auc.Trapezoid([ 0.1; 0.5; 0.9 ], [ 0.0; 1.0; 0.0 ])) 0.4 "triangle"
        }

        test "negative perturbation: a perfect ranking keeps the prediction until the important features go; a reversed one loses it at once" {
            use scope = NewDisposeScope()
            // 10 features, the first 2 decide the class; all inputs positive so the prediction is class 0
            let model = new FirstFeaturesNet(2)
            let x = TestModels.uniform 45 [| 20L; 1L; 1L; 10L |] + 0.1f
            let perfect = arange(10.0, 0.0, -1.0).``to``(ScalarType.Float32).view(1, 1, 1, 10).expand(20, 1, 1, 10).contiguous()
            let reversed = -perfect
            let metric = NegativePerturbation()
            let consistency (maps: Tensor) =
                let p = metric.MaskedPredictions(model, x, maps, 1L, CPU)
                NegativePerturbation.AgreementPercent(p, zeros(20L, dtype = ScalarType.Int64))
            let good = consistency perfect
            let bad = consistency reversed
            // masking 10%..80% leaves at least one of the two important features; 90% removes both... (k = 9 of 10)
            Expect.sequenceEqual good [| 100.0; 100.0; 100.0; 100.0; 100.0; 100.0; 100.0; 100.0; 100.0 |] "perfect ranking: the 9 least important never include feature 0"
            Expect.sequenceEqual bad [| 100.0; 0.0; 0.0; 0.0; 0.0; 0.0; 0.0; 0.0; 0.0 |] "reversed: both important features go at 20%"
            Expect.floatClose Accuracy.high (metric.AreaUnder(good)) 80.0 "AUC of the perfect ranking: 100% over [0.1, 0.9]"
            Expect.floatClose Accuracy.high (metric.AreaUnder(bad)) 5.0 "AUC of the reversed ranking: one trapezoid from 100 to 0"
        }

        test "negative perturbation breaks ties at random, not by storage order" {
            use scope = NewDisposeScope()
            let model = new FirstFeaturesNet(1)
            let x = ones(200, 1, 1, 10)
            let flat = zeros(200, 1, 1, 10)  // no information at all
            let p = NegativePerturbation([ 0.1; 0.5 ]).MaskedPredictions(model, x, flat, 3L, CPU)
            let kept = NegativePerturbation.AgreementPercent(p, zeros(200L, dtype = ScalarType.Int64))
            // feature 0 is masked with probability 0.1 and 0.5: a storage-order tie break would give 100 or 0
            Expect.isTrue (kept.[0] > 80.0 && kept.[0] < 98.0) $"10%% masked: kept {kept.[0]}"
            Expect.isTrue (kept.[1] > 38.0 && kept.[1] < 62.0) $"50%% masked: kept {kept.[1]}"
        }

        test "Spearman: identical maps 1, reversed -1, ties by average ranks" {
            let a = [| 0.1f; 0.5f; 0.3f; 0.9f |]
            Expect.floatClose Accuracy.high (RankCorrelation.Spearman(a, a)) 1.0 "identical"
            Expect.floatClose Accuracy.high (RankCorrelation.Spearman(a, a |> Array.map (fun v -> -v))) -1.0 "reversed"
            Expect.sequenceEqual (RankCorrelation.AverageRanks([| 2.0f; 1.0f; 2.0f; 3.0f |])) [| 2.5; 1.0; 2.5; 4.0 |] "average ranks"
            // hand computation: ranks [1,2,3,4] vs [1.5,1.5,3,4]
            Expect.floatClose Accuracy.medium (RankCorrelation.Spearman([| 1.0f; 2.0f; 3.0f; 4.0f |], [| 0.0f; 0.0f; 1.0f; 2.0f |])) (4.5 / sqrt (5.0 * 4.5)) "with ties"
        }
    ]
