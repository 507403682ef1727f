namespace Experiments

// YAML specs: YamlDotNet's representation model gives the tree and positions; Catalogue.decodeSpec reads it
// and reports every error at once. Syntax errors become located SpecErrors, never exceptions.

open System
open System.IO
open System.Text
open System.Text.RegularExpressions
open YamlDotNet.Core
open YamlDotNet.RepresentationModel

module Yaml =

    let private sequence (rs: Result<'a, SpecError list> list) : Result<'a list, SpecError list> =
        match rs |> List.collect (function Error e -> e | Ok _ -> []) with
        | [] -> Ok(rs |> List.choose (function Ok x -> Some x | Error _ -> None))
        | errors -> Error errors

    let private pos (m: Mark) = { Line = int m.Line; Column = int m.Column }

    let private at (file: string) (m: Mark) message found =
        SpecError.make file (int m.Line) (int m.Column) "" message found []

    /// YamlDotNet's node tree as plain data. Plain `null`, `~` and empty values are nulls; quoted ones are strings.
    let rec private toNode (file: string) (n: YamlNode) : Result<Node, SpecError list> =
        let p = pos n.Start
        match n with
        | :? YamlScalarNode as s ->
            let v =
                match s.Value with
                | null -> ""
                | v -> v
            if s.Style = ScalarStyle.Plain && List.contains v [ ""; "~"; "null"; "Null"; "NULL" ] then Ok(Node.Null p)
            else Ok(Node.Scalar(v, p))
        | :? YamlSequenceNode as q ->
            q.Children |> Seq.map (toNode file) |> List.ofSeq |> sequence |> Result.map (fun xs -> Node.Seq(xs, p))
        | :? YamlMappingNode as m ->
            m.Children
            |> Seq.map (fun kv ->
                match kv.Key with
                | :? YamlScalarNode as k ->
                    let key =
                        match k.Value with
                        | null -> ""
                        | v -> v
                    toNode file kv.Value |> Result.map (fun v -> key, pos k.Start, v)
                | k -> Error [ at file k.Start "keys must be names" None ])
            |> List.ofSeq
            |> sequence
            |> Result.map (fun entries -> Node.Map(entries, p))
        | other -> Error [ at file other.Start "unsupported YAML node (an unresolved alias?)" None ]

    /// YamlDotNet prefixes messages with "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the location is in the SpecError.
    let private clean (message: string) =
        Regex.Replace(message, @"^\(Line: \d+, Col: \d+, Idx: \d+\) - \(Line: \d+, Col: \d+, Idx: \d+\): ", "")

    /// Reads a spec from YAML text; `fileName` is only used in errors.
    let parseText (fileName: string) (text: string) : Result<Spec, SpecError list> =
        let stream = YamlStream()
        let parser = Parser(new StringReader(text))
        let loaded =
            try
                stream.Load(parser)
                Ok()
            with
            | :? YamlException as e ->
                let message = clean e.Message
                let message = if message.StartsWith "Duplicate key" then "duplicate key" else "YAML syntax: " + message
                Error [ at fileName e.Start message None ]
            | _ ->
                // YamlDotNet 16.3 throws InvalidOperationException from its scanner on some inputs (e.g. a flow
                // mapping left open): still the user's input, so still a located error; the last event read is the
                // best position we have.
                let mark =
                    match parser.Current with
                    | null -> Mark.Empty
                    | event -> event.End
                Error [ at fileName mark "YAML syntax: cannot parse past here (an unclosed '{', '[' or quote?)" None ]
        loaded
        |> Result.bind (fun () ->
            match List.ofSeq stream.Documents with
            | [] -> Error [ SpecError.make fileName 1 1 "" "the file is empty; expected a mapping with name, data, model and methods" None [] ]
            | [ doc ] -> toNode fileName doc.RootNode |> Result.bind (Catalogue.decodeSpec { File = fileName; Path = "" } >> Decoded.toResult)
            | _ :: second :: _ -> Error [ at fileName second.RootNode.Start "expected one YAML document, found several" None ])

    /// Reads a spec from a file; a missing or unreadable file is a SpecError too.
    let parseFile (path: string) : Result<Spec, SpecError list> =
        if not (File.Exists path) then
            Error [ SpecError.make path 0 0 "" "file not found" None [] ]
        else
            match (try Ok(File.ReadAllText path) with :? IOException | :? UnauthorizedAccessException as e -> Error e.Message) with
            | Ok text -> parseText path text
            | Error message -> Error [ SpecError.make path 0 0 "" ("cannot read the file: " + message) None [] ]

    /// The spec as YAML that parseText reads back to the same value: sections as block mappings,
    /// methods and metrics one flow mapping a line, every value written out (defaults included).
    let render (spec: Spec) : string =
        let b = StringBuilder()
        let line (s: string) = b.Append(s).Append('\n') |> ignore
        for key, value in Catalogue.encode spec do
            match value with
            | Out.Null -> ()
            | Out.Map kvs when kvs |> List.exists (fun (_, v) -> v <> Out.Null) ->
                line (key + ":")
                for k, v in kvs do
                    if v <> Out.Null then line ("  " + k + ": " + Out.flow v)
            | Out.Map _ -> ()   // every field unset (e.g. full): the section's absence reads back the same
            | Out.Seq items when not items.IsEmpty ->
                line (key + ":")
                for item in items do
                    line ("  - " + Out.flow item)
            | v -> line (key + ": " + Out.flow v)
        b.ToString()
