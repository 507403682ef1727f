namespace Experiments

// Validation of spec values built in F#: the same rules the YAML decoder applies while reading (each
// parameter's range, non-empty lists, unique method ids, increasing fractions), read from the same
// declarations in Catalogue.fs, so a rule is written once. F# values have no positions: File "<fsharp>", Line 0.

module Validate =

    /// Every broken rule of a spec, all at once; [] when the spec is valid.
    let spec (s: Spec) : SpecError list =
        Catalogue.issues s
        |> List.map (fun i -> SpecError.make SpecError.FSharpFile 0 0 i.Path i.Message i.Found [])

    /// The spec itself when valid.
    let check (s: Spec) : Result<Spec, SpecError list> =
        match spec s with
        | [] -> Ok s
        | errors -> Error errors
