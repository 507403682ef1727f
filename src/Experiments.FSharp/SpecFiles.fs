/// Spec files as the command line reads them: the documents of a file, each parsed, validated and located, the
/// embedded quickstart, the selection by name, and the paper's-scale variant of a spec.
module Experiments.SpecFiles

open System
open System.IO
open System.Reflection
open Experiments

/// The spec shipped inside the program, run when no spec is named.
let embeddedQuickstart () =
    use stream =
        match Assembly.GetExecutingAssembly().GetManifestResourceStream "quickstart.yaml" with
        | null -> failwith "the embedded quickstart.yaml is missing from this build"
        | s -> s
    use reader = new StreamReader(stream)
    reader.ReadToEnd()

/// (source name, text) of each spec argument; the embedded quickstart when there is none.
/// The specs of a file: YAML documents separated by a line `---` (a file may hold several specs, e.g. one per
/// architecture). Each document keeps its place: the other documents' lines are blanked, so errors keep the file's
/// line numbers. A file without a separator is one document.
let documents (text: string) : string list =
    let lines = text.Replace("\r\n", "\n").Split '\n'
    let separators = lines |> Array.indexed |> Array.filter (fun (_, l) -> l.TrimEnd() = "---") |> Array.map fst
    if separators.Length = 0 then [ text ]
    else
        let bounds = Array.append (Array.append [| -1 |] separators) [| lines.Length |] |> Array.pairwise
        let isContent (l: string) = let t = l.Trim() in t <> "" && not (t.StartsWith "#")
        let docs =
            [ for start, stop in bounds do
                if lines.[start + 1 .. stop - 1] |> Array.exists isContent then
                    yield lines |> Array.mapi (fun i l -> if i > start && i < stop then l else "") |> String.concat "\n" ]
        if docs.IsEmpty then [ text ] else docs

/// The spec at the paper's scale (`run --full`): named NAME-full, every test input (or the full section's
/// `explain`), the whole training set, the full section's `epochs` where it gives them.
let atFullScale (spec: Spec) =
    { spec with
        Name = spec.Name + "-full"
        Data = { spec.Data with Explain = defaultArg spec.Full.Explain Int32.MaxValue; TrainLimit = None }
        Model = { spec.Model with Epochs = defaultArg spec.Full.Epochs spec.Model.Epochs } }

/// One spec document as read: where it came from, its text (other documents blanked), its tree and its value.
type Loaded = { Source: string; Text: string; Node: Node; Spec: Spec }

/// Later documents of one file that repeat an earlier document's name: both would write the same run folder.
let private duplicateNames (docs: Loaded list) =
    docs
    |> List.groupBy (fun d -> d.Source)
    |> List.collect (fun (_, inFile) ->
        inFile
        |> List.indexed
        |> List.choose (fun (i, d) ->
            inFile
            |> List.take i
            |> List.tryFind (fun e -> e.Spec.Name = d.Spec.Name)
            |> Option.map (fun first ->
                let at = FieldPath.locate first.Node [ Choice1Of2 "name" ]
                Validate.located d.Source d.Node
                    [ SpecError.make SpecError.FSharpFile 0 0 "name" $"another document of this file has the same name (line {at.Line}); each writes the run folder of its name" (Some d.Spec.Name) [] ]))
        |> List.concat)

/// The composition errors of a spec read from `text`, located in it.
let compositionErrors (file: string) (text: string) (spec: Spec) =
    match Yaml.parseTree file text with
    | Ok node -> Validate.composition spec |> Validate.located file node
    | Error errors -> errors

/// Every document of every file: the specs, or every error found (formatted, in source order).
let load (paths: string list) : Result<Loaded list, string list> =
    let read =
        match paths with
        | [] -> [ Ok("<embedded quickstart.yaml>", embeddedQuickstart ()) ]
        | _ -> [ for p in paths -> Yaml.readFile p |> Result.map (fun text -> p, text) ]
    let parsed =
        [ for r in read do
            match r with
            | Error errors -> yield Error errors
            | Ok(source, text) ->
                for doc in documents text do
                    yield
                        Validate.document source doc
                        |> Result.bind (fun (spec, node) ->
                            match Validate.files spec |> Validate.located source node with
                            | [] -> Ok { Source = source; Text = doc; Node = node; Spec = spec }
                            | errors -> Error errors) ]
    let docs = parsed |> List.choose (function Ok d -> Some d | Error _ -> None)
    match (parsed |> List.collect (function Error e -> e | Ok _ -> [])) @ duplicateNames docs with
    | [] -> Ok docs
    | errors -> Error [ SpecError.formatAll errors ]

/// The documents named in `only` (all when it is empty); an `only` name that no spec has is an error listing the
/// names there are.
let selectSpecs (only: string list) (docs: Loaded list) =
    let names = docs |> List.map (fun d -> d.Spec.Name)
    match only |> List.filter (fun n -> not (List.contains n names)) with
    | [] when only.IsEmpty -> Ok docs
    | [] -> Ok(docs |> List.filter (fun d -> List.contains d.Spec.Name only))
    | missing ->
        let quoted = missing |> List.map (sprintf "'%s'") |> String.concat ", "
        Error $"""--only {quoted}: no such spec; the specs given are {names |> String.concat ", "}"""

