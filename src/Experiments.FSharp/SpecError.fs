namespace Experiments

open System

/// An error in a spec, located in its source. Specs built in F# carry File "<fsharp>" and Line 0.
type SpecError =
    { File: string
      Line: int
      Column: int
      /// The field, e.g. methods[2].method; empty for the whole file.
      Path: string
      Message: string
      /// What was found, as written.
      Found: string option
      /// What is allowed there (names), used for "did you mean".
      Allowed: string list }

module SpecError =

    /// The File of errors in specs built as F# values.
    [<Literal>]
    let FSharpFile = "<fsharp>"

    let make file line column path message found allowed =
        { File = file
          Line = line
          Column = column
          Path = path
          Message = message
          Found = found
          Allowed = allowed }

    /// Levenshtein distance (insertions, deletions, substitutions).
    let editDistance (a: string) (b: string) : int =
        let d = Array2D.init (a.Length + 1) (b.Length + 1) (fun i j -> if i = 0 then j elif j = 0 then i else 0)
        for i in 1 .. a.Length do
            for j in 1 .. b.Length do
                let cost = if a[i - 1] = b[j - 1] then 0 else 1
                d[i, j] <- min (min (d[i - 1, j] + 1) (d[i, j - 1] + 1)) (d[i - 1, j - 1] + cost)
        d[a.Length, b.Length]

    /// The closest allowed name within an edit distance of 2 (or a third of the length for long names).
    let suggest (found: string) (allowed: string list) : string option =
        let limit = max 2 (found.Length / 3)
        allowed
        |> List.map (fun c -> c, editDistance (found.ToLowerInvariant()) c)
        |> List.filter (fun (c, d) -> d <= limit && c <> found)
        |> List.sortBy snd
        |> List.tryHead
        |> Option.map fst

    /// A found value as shown in a message: control characters escaped (a newline as \n), cut after 80 characters.
    let shownFound (found: string) =
        let escaped =
            found
            |> Seq.map (fun c ->
                match c with
                | '\n' -> "\\n"
                | '\r' -> "\\r"
                | '\t' -> "\\t"
                | c when Char.IsControl c -> sprintf "\\u%04x" (int c)
                | c -> string c)
            |> String.concat ""
        if escaped.Length <= 80 then escaped else escaped.Substring(0, 60) + sprintf "... (%d characters)" found.Length

    /// file:line:col: path: message (found 'x'); did you mean 'y'? allowed: a, b
    let format (e: SpecError) : string =
        let location = if e.Line > 0 then sprintf "%s:%d:%d" e.File e.Line e.Column else e.File
        let path = if String.IsNullOrEmpty e.Path then "" else e.Path + ": "
        let found =
            match e.Found with
            | Some f -> sprintf " (found '%s')" (shownFound f)
            | None -> ""
        let didYouMean =
            match e.Found with
            | Some f when not e.Allowed.IsEmpty -> suggest f e.Allowed
            | _ -> None
        let tail =
            match didYouMean, e.Allowed with
            | Some s, [] -> sprintf "; did you mean '%s'?" s
            | Some s, allowed -> sprintf "; did you mean '%s'? allowed: %s" s (String.Join(", ", allowed))
            | None, [] -> ""
            | None, allowed -> sprintf "; allowed: %s" (String.Join(", ", allowed))
        sprintf "%s: %s%s%s%s" location path e.Message found tail

    /// One error a line, in source order.
    let formatAll (errors: SpecError list) : string =
        errors
        |> List.sortBy (fun e -> e.File, e.Line, e.Column)
        |> List.map format
        |> String.concat Environment.NewLine
