/// The bootstrap interval of a mean, on cases whose truth is known.
module BootstrapTests

open System
open Expecto
open Attribution.Metrics

[<Tests>]
let tests =
    testList "bootstrap" [
        test "95% intervals of the mean of 50 normal draws cover the true mean at about 95% (400 trials)" {
            // Coverage is a binomial proportion: at 95% over 400 trials its standard deviation is 1.1%; the percentile
            // bootstrap is known to run slightly narrow at n = 50, so the band is [91%, 98%].
            let rng = Random(20261203)
            let normal () = sqrt (-2.0 * log (1.0 - rng.NextDouble())) * cos (2.0 * Math.PI * rng.NextDouble())
            let trueMean = 3.0
            let covered =
                [ for trial in 1 .. 400 ->
                    let x = Array.init 50 (fun _ -> trueMean + normal ())
                    let ci = Bootstrap.MeanInterval(x, int64 trial)
                    ci.Low <= trueMean && trueMean <= ci.High ]
                |> List.filter id |> List.length
            let rate = float covered / 400.0
            Expect.isTrue (rate >= 0.91 && rate <= 0.98) $"coverage {rate:P1}"
        }

        test "the interval is seeded, contains the sample mean, narrows as 1/sqrt(n), and ignores NaN" {
            let rng = Random(5)
            let x = Array.init 400 (fun _ -> rng.NextDouble())
            let a, b = Bootstrap.MeanInterval(x, 7L), Bootstrap.MeanInterval(x, 7L)
            Expect.equal (a.Low, a.High) (b.Low, b.High) "same seed, same interval"
            let mean = Array.average x
            Expect.isTrue (a.Low < mean && mean < a.High) "contains the sample mean"
            let quarter = Bootstrap.MeanInterval(x.[.. 99], 7L)
            let ratio = (quarter.High - quarter.Low) / (a.High - a.Low)
            Expect.isTrue (ratio > 1.6 && ratio < 2.5) $"a quarter of the inputs: about twice as wide ({ratio:F2})"
            let withNan = Bootstrap.MeanInterval(Array.append x [| nan; nan |], 7L)
            Expect.equal (withNan.Low, withNan.High, withNan.Count) (a.Low, a.High, 400) "NaN left out"
            Expect.isTrue (Double.IsNaN (Bootstrap.MeanInterval([| 1.0 |], 1L)).Low) "one value: no interval"
        }
    
        test "the interval of a statistic of resampled inputs is the mean's interval when the statistic is their mean" {
            let rng = Random(11)
            let x = Array.init 120 (fun _ -> rng.NextDouble() * 4.0)
            let ofStatistic = Bootstrap.StatisticInterval(x.Length, Func<int[], float>(fun rows -> rows |> Array.averageBy (fun i -> x.[i])), 3L)
            let ofMean = Bootstrap.MeanInterval(x, 3L)
            Expect.floatClose Accuracy.veryHigh ofStatistic.Low ofMean.Low "low end"
            Expect.floatClose Accuracy.veryHigh ofStatistic.High ofMean.High "high end"
        }
    ]
