/// Cache keys: two specs share a step exactly when the step's inputs are equal, to the last bit of every float and
/// the last item of every list.
module CacheKeyTests

open Expecto
open Experiments

let private base' =
    Dsl.spec "keys"
    |> Dsl.withMethods [ Dsl.smoothGrad |> Dsl.withSampler (IsotropicGaussian 0.15) ]
    |> Dsl.withMetrics [ Dsl.negativePerturbation ]

let private stepHash (prefix: string) (spec: Spec) =
    (Plan.compile spec "data").Steps |> List.find (fun s -> s.Name.StartsWith prefix) |> _.Hash

[<Tests>]
let tests =
    testList "cache keys" [
        test "specs that differ only in the 12th significant digit of a parameter get different steps" {
            let other = base' |> Dsl.withMethods [ Dsl.smoothGrad |> Dsl.withSampler (IsotropicGaussian 0.15000000001) ]
            Expect.notEqual (stepHash "attribute/" other) (stepHash "attribute/" base') "the attribution steps differ"
            Expect.notEqual (stepHash "negative_perturbation/" other) (stepHash "negative_perturbation/" base') "and the metric steps that read them"
            Expect.equal (stepHash "attribute/" (base' |> Dsl.withMethods [ Dsl.smoothGrad |> Dsl.withSampler (IsotropicGaussian 0.15) ])) (stepHash "attribute/" base') "equal values share a step"
        }

        test "fraction lists of 150 items that differ only in the 121st get different steps" {
            let fractions = [ for i in 1..150 -> float i / 151.0 ]
            let changed = fractions |> List.mapi (fun i f -> if i = 120 then f + 1e-9 else f)
            let withFractions fs = base' |> Dsl.withMetrics [ Dsl.negativePerturbation |> Dsl.withFractions fs ]
            Expect.isEmpty (Validate.spec (withFractions changed)) "a valid spec"
            Expect.notEqual (stepHash "negative_perturbation/" (withFractions changed)) (stepHash "negative_perturbation/" (withFractions fractions)) "different steps"
        }

        test "explain.common_noise: off, the keys and seeds are those from before the switch existed; on, every attribution key changes and every method draws from derive(seed, common_noise)" {
            let spec =
                Dsl.spec "keys"
                |> Dsl.withMethods [ Dsl.smoothGrad |> Dsl.withSampler (IsotropicGaussian 0.15); Dsl.integratedGradients |> Dsl.withSteps 32 ]
                |> Dsl.withMetrics [ Dsl.negativePerturbation ]
            let hashes (s: Spec) = (Plan.compile s "data").Steps |> List.map (fun step -> step.Name, step.Hash) |> Map.ofList
            let off = hashes spec
            // computed by the build before explain.common_noise (commit 52b8c46)
            Expect.equal off.["attribute/smooth_grad/ground_truth"] "7f52cd28d683f5211a7bd5bb17bfc8f0ec5787efdef048b470aac56924f58951" "smooth_grad's key"
            Expect.equal off.["attribute/integrated_gradients/predicted"] "f3fb8ff7916355800c1e8d4c91232f29043d581d9671fe05112764b4aab20d5c" "integrated_gradients' key"
            Expect.equal off.["negative_perturbation/smooth_grad"] "26e2fea7f0dd5e3fb9dd3b2a615d54b3dd3e2962039c374bf379a9ff4f2ea35a" "a metric's key"
            Expect.equal (Plan.methodSeed spec Dsl.smoothGrad.Kind) 5461526569690308901L "smooth_grad's seed"
            let on = hashes (spec |> Dsl.withCommonNoise true)
            Expect.equal on.["model"] off.["model"] "the model is the same"
            for name in off.Keys do
                if name.StartsWith "attribute/" || name.StartsWith "negative_perturbation/" then Expect.notEqual on.[name] off.[name] $"{name} changes"
            let common = Attribution.Runtime.Seeds.Derive(int64 spec.Seed, "common_noise")
            for kind in [ Dsl.smoothGrad.Kind; Dsl.varGrad.Kind; Dsl.smoothGradSq.Kind; (Dsl.smoothGrad |> Dsl.withSamples 7).Kind ] do
                Expect.equal (Plan.methodSeed (spec |> Dsl.withCommonNoise true) kind) common "one seed for every method"
            Expect.notEqual (Plan.methodSeed spec Dsl.varGrad.Kind) (Plan.methodSeed spec Dsl.smoothGrad.Kind) "off: a seed per method"
        }

        test "the canonical text tells apart what F#'s layout does not, and is equal for equal values" {
            let long = [ for i in 1..150 -> i ]
            Expect.equal (sprintf "%A" long) (sprintf "%A" (long |> List.mapi (fun i x -> if i = 120 then -1 else x))) "the layout cuts lists at 100 items"
            Expect.notEqual (Canonical.text long) (Canonical.text (long |> List.mapi (fun i x -> if i = 120 then -1 else x))) "the canonical text does not"
            Expect.notEqual (Canonical.text 0.15) (Canonical.text 0.15000000001) "floats to the last bit"
            Expect.notEqual (Canonical.text 0.0) (Canonical.text -0.0) "even the sign of zero"
            Expect.notEqual (Canonical.text (Some 1)) (Canonical.text (None: int option)) "options"
            Expect.equal (Canonical.text (IsotropicGaussian 0.15)) (Canonical.text (IsotropicGaussian(float "0.15"))) "equal values, equal texts"
            Expect.notEqual (Canonical.text (Attribution.Data.CanvasOptions())) (Canonical.text (Attribution.Data.CanvasOptions(Size = 57))) "an engine options object by its properties"
            Expect.notEqual (Canonical.text [ "a,b" ]) (Canonical.text [ "a"; "b" ]) "strings are quoted"
        }
    ]
