namespace Experiments

// YAML specs: YamlDotNet's event parser gives the tokens and positions; the tree (Node) is built here with an
// explicit stack, under stated limits, so that no input can recurse without bound, expand aliases without bound or
// hang; Catalogue.decodeSpec reads the tree and reports every error at once. Syntax errors become located
// SpecErrors, never exceptions.

open System
open System.Collections.Generic
open System.IO
open System.Text
open System.Text.RegularExpressions
open YamlDotNet.Core
open YamlDotNet.Core.Events

/// What a spec file may hold. A spec is a few kilobytes; these bounds are far above any real spec and far below
/// what it takes to exhaust memory, time or the stack.
module SpecLimits =
    /// Bytes of one spec file.
    [<Literal>]
    let FileBytes = 1_048_576
    /// Mappings and sequences nested in one another.
    [<Literal>]
    let Depth = 32
    /// Nodes of a document, with every alias counted as the nodes it stands for.
    [<Literal>]
    let Nodes = 20_000
    /// Keys of all mappings together.
    [<Literal>]
    let Keys = 5_000
    /// Alias uses (*name) in one document.
    [<Literal>]
    let Aliases = 100

module Yaml =

    let private pos (m: Mark) = { Line = int m.Line; Column = int m.Column }

    let private at (file: string) (p: Pos) message found =
        SpecError.make file p.Line p.Column "" message found []

    /// A mapping or sequence being read: its parts so far, where it started, its anchor, and its size in nodes.
    type private Open =
        { IsMap: bool
          Start: Pos
          Anchor: string
          Items: List<Node>
          Entries: List<string * Pos * Node>
          mutable Key: (string * Pos) option
          mutable Size: int }

    exception private Stop of SpecError

    /// A tab in the indentation of a line, which YamlDotNet reports at 1:1: the first such line and column.
    let private tabIndentation (text: string) =
        text.Replace("\r\n", "\n").Split '\n'
        |> Array.indexed
        |> Array.tryPick (fun (i, line) ->
            let indent = line.Length - line.TrimStart(' ', '\t').Length
            match line.IndexOf '\t' with
            | c when c >= 0 && c < indent -> Some { Line = i + 1; Column = c + 1 }
            | _ -> None)

    /// YamlDotNet prefixes messages with "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the location is in the SpecError.
    let private clean (message: string) =
        Regex.Replace(message, @"^\(Line: \d+, Col: \d+, Idx: \d+\) - \(Line: \d+, Col: \d+, Idx: \d+\): ", "")

    let private anchorOf (a: AnchorName) = if a.IsEmpty then "" else a.Value

    /// The tree of one YAML document, built from parser events. Plain `null`, `~` and empty values are nulls; quoted
    /// ones are strings. Aliases are resolved to their anchor's tree (shared, not copied) and counted at full size.
    let private build (file: string) (parser: IParser) : Node =
        let stack = Stack<Open>()
        let anchors = Dictionary<string, Node * int>()
        let mutable root: Node option = None
        let mutable nodes = 0
        let mutable keys = 0
        let mutable aliases = 0
        let mutable documents = 0
        let fail p message found = raise (Stop(at file p message found))
        let count (p: Pos) (size: int) =
            nodes <- nodes + size
            if nodes > SpecLimits.Nodes then
                fail p $"the spec is too large: more than {SpecLimits.Nodes} nodes (aliases counted at their expanded size); a spec needs a few hundred" None
        let complete (node: Node) (size: int) (anchor: string) =
            if not (String.IsNullOrEmpty anchor) then anchors.[anchor] <- (node, size)
            if stack.Count = 0 then root <- Some node
            else
                let parent = stack.Peek()
                parent.Size <- parent.Size + size
                if not parent.IsMap then parent.Items.Add node
                else
                    match parent.Key, node with
                    | None, Node.Scalar(k, p) -> parent.Key <- Some(k, p)
                    | None, Node.Null p -> parent.Key <- Some("", p)
                    | None, other -> fail other.Pos "keys must be names" None
                    | Some(k, kp), value ->
                        keys <- keys + 1
                        if keys > SpecLimits.Keys then fail kp $"the spec has more than {SpecLimits.Keys} keys; a spec needs a few dozen" None
                        parent.Entries.Add((k, kp, value))
                        parent.Key <- None
        let start (isMap: bool) (p: Pos) (anchor: string) =
            if stack.Count >= SpecLimits.Depth then
                fail p $"nested too deeply: more than {SpecLimits.Depth} levels of mappings and sequences" None
            count p 1
            stack.Push { IsMap = isMap; Start = p; Anchor = anchor; Items = List(); Entries = List(); Key = None; Size = 1 }
        while parser.MoveNext() do
            match parser.Current with
            | :? DocumentStart as d ->
                documents <- documents + 1
                if documents > 1 then fail (pos d.Start) "expected one YAML document, found several" None
            | :? Scalar as s ->
                let p = pos s.Start
                count p 1
                let v = s.Value
                let node = if s.Style = ScalarStyle.Plain && List.contains v [ ""; "~"; "null"; "Null"; "NULL" ] then Node.Null p else Node.Scalar(v, p)
                complete node 1 (anchorOf s.Anchor)
            | :? SequenceStart as q -> start false (pos q.Start) (anchorOf q.Anchor)
            | :? MappingStart as m -> start true (pos m.Start) (anchorOf m.Anchor)
            | :? SequenceEnd | :? MappingEnd ->
                let o = stack.Pop()
                let node = if o.IsMap then Node.Map(List.ofSeq o.Entries, o.Start) else Node.Seq(List.ofSeq o.Items, o.Start)
                complete node o.Size o.Anchor
            | :? AnchorAlias as a ->
                let p = pos a.Start
                let name = anchorOf a.Value
                aliases <- aliases + 1
                if aliases > SpecLimits.Aliases then fail p $"more than {SpecLimits.Aliases} aliases (*name); a spec needs none" None
                match anchors.TryGetValue name with
                | true, (node, size) ->
                    count p size
                    complete node size ""
                | _ when stack |> Seq.exists (fun o -> o.Anchor = name) ->
                    fail p "an alias inside the node it names (a recursive alias)" (Some("*" + name))
                | _ -> fail p "undefined alias: no anchor of this name before it" (Some("*" + name))
            | _ -> ()
        match root with
        | Some node -> node
        | None -> fail { Line = 1; Column = 1 } "the file is empty; expected a mapping with name, data, model and methods" None

    /// The tree of a spec's YAML text, or the first syntax error or broken limit, located; `file` is only used in errors.
    let parseTree (file: string) (text: string) : Result<Node, SpecError list> =
        if Encoding.UTF8.GetByteCount text > SpecLimits.FileBytes then
            Error [ SpecError.make file 1 1 "" $"the spec is larger than {SpecLimits.FileBytes / 1024} KiB; a spec is a few kilobytes" None [] ]
        else
            let parser = Parser(new StringReader(text))
            try
                Ok(build file parser)
            with
            | Stop e -> Error [ e ]
            | :? YamlException as e when (clean e.Message).Contains "tab" ->
                let p = tabIndentation text |> Option.defaultValue (pos e.Start)
                Error [ at file p "YAML syntax: a tab in the indentation (indent with spaces)" None ]
            | :? YamlException as e ->
                let message = clean e.Message
                let message = if message.StartsWith "Duplicate key" then "duplicate key" else "YAML syntax: " + message
                Error [ at file (pos e.Start) message None ]
            | _ ->
                // YamlDotNet 16.3 throws InvalidOperationException from its scanner on some inputs (e.g. a flow
                // mapping left open): still the user's input, so still a located error; the last event read is the
                // best position we have.
                let mark =
                    match parser.Current with
                    | null -> Mark.Empty
                    | event -> event.End
                Error [ at file (pos mark) "YAML syntax: cannot parse past here (an unclosed '{', '[' or quote?)" None ]

    /// Reads a spec and its tree from YAML text; `fileName` is only used in errors.
    let parseDocument (fileName: string) (text: string) : Result<Spec * Node, SpecError list> =
        parseTree fileName text
        |> Result.bind (fun node ->
            Catalogue.decodeSpec { File = fileName; Path = "" } node |> Decoded.toResult |> Result.map (fun spec -> spec, node))

    /// Reads a spec from YAML text; `fileName` is only used in errors.
    let parseText (fileName: string) (text: string) : Result<Spec, SpecError list> =
        parseDocument fileName text |> Result.map fst

    /// The text of a spec file, refusing a missing, unreadable or oversized one before reading it.
    let readFile (path: string) : Result<string, SpecError list> =
        let refuse message = Error [ SpecError.make path 0 0 "" message None [] ]
        if Directory.Exists path then refuse "is a folder, not a spec file"
        elif not (File.Exists path) then refuse "no such spec file (the shipped specs are in experiments/)"
        else
            try
                let length = FileInfo(path).Length
                if length > int64 SpecLimits.FileBytes then
                    refuse $"the file is {length} bytes; a spec is at most {SpecLimits.FileBytes / 1024} KiB (a few kilobytes is usual)"
                else Ok(File.ReadAllText path)
            with :? IOException | :? UnauthorizedAccessException as e -> refuse ("cannot read the file: " + e.Message)

    /// Reads a spec from a file; a missing, unreadable or oversized file is a SpecError too.
    let parseFile (path: string) : Result<Spec, SpecError list> = readFile path |> Result.bind (parseText path)

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
