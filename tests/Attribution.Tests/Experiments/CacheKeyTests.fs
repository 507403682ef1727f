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
