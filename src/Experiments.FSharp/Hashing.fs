/// Content hashes for cache keys: a step's hash covers everything that determines its output.
module Experiments.Hashing

open System.Security.Cryptography
open System.Text

/// Bumped when the engine changes what a step computes, so that old artefacts are not reused.
let engineVersion = "engine-3"

/// Hex SHA-256 of the parts, each length-prefixed so that ("ab", "c") and ("a", "bc") differ.
let hash (parts: string list) =
    let text = parts |> List.map (fun p -> $"{p.Length}:{p}") |> String.concat "|"
    SHA256.HashData(Encoding.UTF8.GetBytes(engineVersion + "|" + text)) |> Array.map (fun b -> b.ToString "x2") |> String.concat ""

/// A short prefix for display.
let short (h: string) = h.Substring(0, 12)

/// The canonical full-precision text of any value, for hashing (Canonical.fs).
let canonical (value: 'T) = Canonical.text value

/// F#'s structural layout of a value, for people (reports, messages). Not canonical: it rounds floats to 10
/// significant digits and cuts lists at 100 items, so it must not key anything.
let display (value: 'T) = sprintf "%A" value
