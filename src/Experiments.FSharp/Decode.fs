namespace Experiments

// The small vocabulary Catalogue.fs declares parameters with: a source tree with positions (Node),
// written-back values (Out), decoders that return located errors, parameters (Param), an applicative of
// the fields of a mapping (Fields, with the `fields { }` builder) and tagged families (Variant).
// Kept apart from Catalogue.fs so that each stays readable; nothing here names a method or a default.

open System
open System.Globalization

/// A 1-based position in a source file.
type Pos = { Line: int; Column: int }

/// A YAML document as plain F# data (Yaml.fs builds it from YamlDotNet's representation model).
[<RequireQualifiedAccess>]
type Node =
    | Null of Pos
    | Scalar of string * Pos
    | Seq of Node list * Pos
    /// Entries in source order: key, key position, value.
    | Map of (string * Pos * Node) list * Pos

    member n.Pos =
        match n with
        | Null p
        | Scalar(_, p)
        | Seq(_, p)
        | Map(_, p) -> p

/// A value as written back (by Yaml.render, in messages and in `list`).
[<RequireQualifiedAccess>]
type Out =
    | Null
    /// Written as is: numbers, booleans, names.
    | Plain of string
    /// A user string: always double-quoted.
    | Str of string
    | Seq of Out list
    | Map of (string * Out) list

module Out =
    /// Shortest text that reads back to the same double ("R"), with a lower-case exponent.
    let float (x: float) = Out.Plain(x.ToString("R", CultureInfo.InvariantCulture).Replace('E', 'e'))
    let int (x: int) = Out.Plain(x.ToString(CultureInfo.InvariantCulture))
    let bool (x: bool) = Out.Plain(if x then "true" else "false")

    let quote (s: string) =
        let b = Text.StringBuilder("\"")
        for c in s do
            match c with
            | '"' -> b.Append("\\\"") |> ignore
            | '\\' -> b.Append("\\\\") |> ignore
            | c when c < ' ' || c = '\u007f' -> b.AppendFormat("\\u{0:x4}", uint16 c) |> ignore
            | c -> b.Append(c) |> ignore
        b.Append('"').ToString()

    /// Flow style: scalars, [a, b], { k: v }; null entries of mappings are left out.
    let rec flow (o: Out) : string =
        match o with
        | Out.Null -> "null"
        | Out.Plain s -> s
        | Out.Str s -> quote s
        | Out.Seq xs -> "[" + String.Join(", ", xs |> List.map flow) + "]"
        | Out.Map kvs ->
            match kvs |> List.filter (fun (_, v) -> v <> Out.Null) with
            | [] -> "{}"
            | kvs -> "{ " + String.Join(", ", kvs |> List.map (fun (k, v) -> k + ": " + flow v)) + " }"

    /// As in a message: strings unquoted, everything else in flow style.
    let shown (o: Out) =
        match o with
        | Out.Str s -> s
        | o -> flow o

/// A broken rule, relative to the value checked: Path "" is the value itself, "[2].id" a part of it.
type Issue = { Path: string; Message: string; Found: string option }

module FieldPath =
    let join (prefix: string) (rel: string) =
        if prefix = "" then rel
        elif rel = "" then prefix
        elif rel.StartsWith "[" then prefix + rel
        else prefix + "." + rel

    /// "[2].id.x" -> [Choice2Of2 2; Choice1Of2 "id"; Choice1Of2 "x"]
    let segments (rel: string) =
        rel.Replace("[", ".[").Split('.', StringSplitOptions.RemoveEmptyEntries)
        |> Array.map (fun s -> if s.StartsWith "[" then Choice2Of2(int (s.Trim('[', ']'))) else Choice1Of2 s)
        |> List.ofArray

    /// The position of a part of a node, or of its nearest enclosing part that exists.
    let rec locate (node: Node) (segs: Choice<string, int> list) : Pos =
        match segs, node with
        | [], n -> n.Pos
        | Choice1Of2 k :: rest, Node.Map(entries, _) ->
            match entries |> List.tryFind (fun (key, _, _) -> key = k) with
            | Some(_, _, v) -> locate v rest
            | None -> node.Pos
        | Choice2Of2 i :: rest, Node.Seq(items, _) when i < items.Length -> locate items[i] rest
        | _, n -> n.Pos

/// Where a decoder is: the file and the field path.
type Ctx = { File: string; Path: string }

/// A value, when its shape could be read, and every error found on the way. A value that breaks a rule
/// (a range, a duplicate) is still read, so the rules of the values around it still run and all errors
/// come out at once, exactly those Validate.spec finds in the same value built in F#.
type Decoded<'a> = { Value: 'a option; Errors: SpecError list }

type Decoder<'a> = Ctx -> Node -> Decoded<'a>

module Decoded =
    let ok (v: 'a) = { Value = Some v; Errors = [] }
    let fail (errors: SpecError list) : Decoded<'a> = { Value = None; Errors = errors }
    let map f (d: Decoded<'a>) = { Value = Option.map f d.Value; Errors = d.Errors }
    let map2 f (a: Decoded<'a>) (b: Decoded<'b>) = { Value = Option.map2 f a.Value b.Value; Errors = a.Errors @ b.Errors }

    let bind (f: 'a -> Decoded<'b>) (d: Decoded<'a>) =
        match d.Value with
        | Some v ->
            let r = f v
            { r with Errors = d.Errors @ r.Errors }
        | None -> { Value = None; Errors = d.Errors }

    /// More errors; the value stays.
    let also (errors: SpecError list) (d: Decoded<'a>) = { d with Errors = d.Errors @ errors }

    let sequence (ds: Decoded<'a> list) : Decoded<'a list> =
        { Value = (if ds |> List.forall (fun d -> d.Value.IsSome) then Some(ds |> List.choose _.Value) else None)
          Errors = ds |> List.collect _.Errors }

    let toResult (d: Decoded<'a>) : Result<'a, SpecError list> =
        match d.Value, d.Errors with
        | Some v, [] -> Ok v
        | _, [] -> invalidOp "a decoder returned neither a value nor an error"
        | _, errors -> Error errors

module Decode =
    let error (ctx: Ctx) (pos: Pos) message found allowed =
        SpecError.make ctx.File pos.Line pos.Column ctx.Path message found allowed

    let field name (ctx: Ctx) = { ctx with Path = FieldPath.join ctx.Path name }
    let index (i: int) (ctx: Ctx) = { ctx with Path = sprintf "%s[%d]" ctx.Path i }

    let shown (n: Node) =
        match n with
        | Node.Null _ -> "null"
        | Node.Scalar(s, _) -> s
        | Node.Seq _ -> "a sequence"
        | Node.Map _ -> "a mapping"

    let scalar (expected: string) (parse: string -> 'a option) : Decoder<'a> =
        fun ctx n ->
            match n with
            | Node.Scalar(s, p) ->
                match parse s with
                | Some v -> Decoded.ok v
                | None -> Decoded.fail [ error ctx p ("expected " + expected) (Some s) [] ]
            | other -> Decoded.fail [ error ctx other.Pos ("expected " + expected) (Some(shown other)) [] ]

    let int: Decoder<int> =
        scalar "an integer" (fun s ->
            match Int32.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) with
            | true, v -> Some v
            | _ -> None)

    let float: Decoder<float> =
        scalar "a number" (fun s ->
            match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with
            | true, v -> Some v
            | _ -> None)

    let bool: Decoder<bool> =
        scalar "true or false" (fun s ->
            match s.ToLowerInvariant() with
            | "true" -> Some true
            | "false" -> Some false
            | _ -> None)

    let string: Decoder<string> = scalar "a string" Some

    /// One of a closed set of names.
    let choice (noun: string) (cases: (string * 'a) list) : Decoder<'a> =
        fun ctx n ->
            let names = cases |> List.map fst
            match n with
            | Node.Scalar(s, p) ->
                match cases |> List.tryFind (fun (name, _) -> name = s) with
                | Some(_, v) -> Decoded.ok v
                | None -> Decoded.fail [ error ctx p ("unknown " + noun) (Some s) names ]
            | other -> Decoded.fail [ error ctx other.Pos ("expected a " + noun + " name") (Some(shown other)) names ]

    let list (item: Decoder<'a>) : Decoder<'a list> =
        fun ctx n ->
            match n with
            | Node.Seq(items, _) -> items |> List.mapi (fun i x -> item (index i ctx) x) |> Decoded.sequence
            | other -> Decoded.fail [ error ctx other.Pos "expected a sequence" (Some(shown other)) [] ]

    let optional (d: Decoder<'a>) : Decoder<'a option> =
        fun ctx n ->
            match n with
            | Node.Null _ -> Decoded.ok None
            | _ -> d ctx n |> Decoded.map Some

    /// Keys of a mapping that are not in `known`, and keys given twice.
    let strayKeys (ctx: Ctx) (entries: (string * Pos * Node) list) (known: string list) (message: string) =
        let knownSet = Set.ofList known
        let unknown =
            entries
            |> List.filter (fun (k, _, _) -> not (knownSet.Contains k))
            |> List.map (fun (k, kp, _) -> error (field k ctx) kp message (Some k) known)
        let seen = Collections.Generic.HashSet<string>()
        let duplicates =
            entries
            |> List.filter (fun (k, _, _) -> not (seen.Add k))
            |> List.map (fun (k, kp, _) -> error (field k ctx) kp "duplicate key" (Some k) [])
        unknown @ duplicates

    /// Issues found by a check, located in the node they came from.
    let located (ctx: Ctx) (node: Node) (issues: Issue list) =
        issues
        |> List.map (fun i ->
            let c = field i.Path ctx
            error c (FieldPath.locate node (FieldPath.segments i.Path)) i.Message i.Found [])

/// What `list` and the docs show about a parameter.
type ParamInfo =
    { Name: string
      Type: string
      /// None: required.
      Default: string option
      Allowed: string
      Doc: string }

/// A parameter: how to read it, write it back and check it.
type Param<'a> =
    { Info: ParamInfo
      /// None: required.
      Default: 'a option
      Decode: Decoder<'a>
      Encode: 'a -> Out
      /// Rules on this value as a whole (ranges, uniqueness within a list), applied by the decoder and by Validate.
      Check: 'a -> Issue list
      /// Rules of the parts (a section's fields), which their own decoders already apply; used by Validate.
      Deep: 'a -> Issue list }

module Param =
    let issues (p: Param<'a>) (v: 'a) = p.Check v @ p.Deep v

    /// The default of a parameter that has one (a missing default is a bug in this file).
    let dflt (p: Param<'a>) : 'a =
        match p.Default with
        | Some d -> d
        | None -> invalidOp (sprintf "parameter '%s' has no default" p.Info.Name)

    let rule (check: 'a -> string option) (encode: 'a -> Out) : 'a -> Issue list =
        fun v ->
            match check v with
            | Some m -> [ { Path = ""; Message = m; Found = Some(Out.shown (encode v)) } ]
            | None -> []

    let make name typ allowed doc (dflt: 'a option) (decode: Decoder<'a>) (encode: 'a -> Out) (check: 'a -> string option) =
        { Info =
            { Name = name
              Type = typ
              Default = dflt |> Option.map (encode >> Out.flow)
              Allowed = allowed
              Doc = doc }
          Default = dflt
          Decode = decode
          Encode = encode
          Check = rule check encode
          Deep = fun _ -> [] }

    let int name doc dflt (lo: int) (hi: int option) =
        let allowed, check =
            match hi with
            | None -> sprintf ">= %d" lo, (fun v -> if v >= lo then None else Some(sprintf "must be >= %d" lo))
            | Some hi ->
                sprintf "%d..%d" lo hi,
                (fun v -> if v >= lo && v <= hi then None else Some(sprintf "must be between %d and %d" lo hi))
        make name "int" allowed doc dflt Decode.int Out.int check

    /// A float in (0, hi] (strict) or [0, hi].
    let float name doc dflt (strict: bool) (hi: float) =
        let shown (x: float) = Out.flow (Out.float x)
        let allowed = if strict then sprintf "(0, %s]" (shown hi) else sprintf "[0, %s]" (shown hi)
        let check (v: float) =
            if Double.IsFinite v && (if strict then v > 0.0 else v >= 0.0) && v <= hi then None
            else Some("must be a number in " + allowed)
        make name "float" allowed doc dflt Decode.float Out.float check

    /// A float in [lo, hi].
    let floatIn name doc dflt (lo: float) (hi: float) =
        let shown (x: float) = Out.flow (Out.float x)
        let allowed = sprintf "[%s, %s]" (shown lo) (shown hi)
        let check (v: float) = if v >= lo && v <= hi then None else Some("must be a number in " + allowed)
        make name "float" allowed doc dflt Decode.float Out.float check

    let bool name doc dflt = make name "bool" "true | false" doc dflt Decode.bool Out.bool (fun _ -> None)

    let choice name noun doc dflt (cases: (string * 'a) list) =
        let nameOf v = cases |> List.find (fun (_, c) -> c = v) |> fst
        make name noun (String.Join(" | ", cases |> List.map fst)) doc dflt (Decode.choice noun cases) (nameOf >> Out.Plain) (fun _ -> None)

    let string name doc dflt (check: string -> string option) =
        make name "string" "text" doc dflt Decode.string Out.Str check

    /// An optional value: absent or null is None.
    let optional (p: Param<'a>) : Param<'a option> =
        { Info = { p.Info with Default = Some "none"; Type = p.Info.Type + "?" }
          Default = Some None
          Decode = Decode.optional p.Decode
          Encode = Option.map p.Encode >> Option.defaultValue Out.Null
          Check = Option.map p.Check >> Option.defaultValue []
          Deep = Option.map p.Deep >> Option.defaultValue [] }

    /// A list of items; `check` sees the whole list and reports relative to it ("[2]").
    let list name doc (dflt: 'a list option) (item: Param<'a>) (allowed: string) (check: 'a list -> Issue list) =
        let encode = List.map item.Encode >> Out.Seq
        { Info =
            { Name = name
              Type = "list of " + item.Info.Type
              Default = dflt |> Option.map (encode >> Out.flow)
              Allowed = allowed
              Doc = doc }
          Default = dflt
          Decode =
            fun ctx n ->
                Decode.list
                    (fun c x ->
                        let d = item.Decode c x
                        d |> Decoded.also (d.Value |> Option.map (item.Check >> Decode.located c x) |> Option.defaultValue []))
                    ctx
                    n
          Encode = encode
          Check = check
          Deep =
            fun xs ->
                xs
                |> List.mapi (fun i x ->
                    issues item x |> List.map (fun s -> { s with Path = FieldPath.join (sprintf "[%d]" i) s.Path }))
                |> List.concat }

/// The fields of a mapping, as an applicative: reads a record of type 'a; writes and checks a value of type 'r.
type Fields<'r, 'a> =
    { Params: ParamInfo list
      Default: 'a option
      Run: Ctx -> (string * Pos * Node) list -> Pos -> Decoded<'a>
      Encode: 'r -> (string * Out) list
      Issues: 'r -> Issue list }

module Fields =
    let ret (x: 'a) : Fields<'r, 'a> =
        { Params = []
          Default = Some x
          Run = fun _ _ _ -> Decoded.ok x
          Encode = fun _ -> []
          Issues = fun _ -> [] }

    let map (f: 'a -> 'b) (a: Fields<'r, 'a>) : Fields<'r, 'b> =
        { Params = a.Params
          Default = Option.map f a.Default
          Run = fun c e p -> a.Run c e p |> Decoded.map f
          Encode = a.Encode
          Issues = a.Issues }

    let map2 (f: 'a -> 'b -> 'c) (a: Fields<'r, 'a>) (b: Fields<'r, 'b>) : Fields<'r, 'c> =
        { Params = a.Params @ b.Params
          Default = Option.map2 f a.Default b.Default
          Run = fun c e p -> Decoded.map2 f (a.Run c e p) (b.Run c e p)
          Encode = fun r -> a.Encode r @ b.Encode r
          Issues = fun r -> a.Issues r @ b.Issues r }

    /// The field `p.Info.Name` of a mapping; `get` finds it in a value for writing and checking.
    let field (get: 'r -> 'a) (p: Param<'a>) : Fields<'r, 'a> =
        { Params = [ p.Info ]
          Default = p.Default
          Run =
            fun ctx entries mapPos ->
                let c = Decode.field p.Info.Name ctx
                match entries |> List.tryFind (fun (k, _, _) -> k = p.Info.Name) with
                | Some(_, _, node) ->
                    let d = p.Decode c node
                    d |> Decoded.also (d.Value |> Option.map (p.Check >> Decode.located c node) |> Option.defaultValue [])
                | None ->
                    match p.Default with
                    | Some d -> Decoded.ok d
                    | None -> Decoded.fail [ Decode.error c mapPos "missing required field" None [] ]
          Encode = fun r -> [ p.Info.Name, p.Encode(get r) ]
          Issues =
            fun r ->
                Param.issues p (get r)
                |> List.map (fun i -> { i with Path = FieldPath.join p.Info.Name i.Path }) }

    /// A rule across fields (one field allowed only with some value of another), on the value the fields read: the
    /// decoder locates its issues at the fields they name (relative paths), and Validate sees them on values built in F#.
    let satisfying (rule: 'a -> Issue list) (f: Fields<'a, 'a>) : Fields<'a, 'a> =
        { f with
            Run =
                fun ctx entries pos ->
                    let d = f.Run ctx entries pos
                    match d.Value with
                    | Some v -> d |> Decoded.also (Decode.located ctx (Node.Map(entries, pos)) (rule v))
                    | None -> d
            Issues = fun r -> f.Issues r @ rule r }

    /// A value given under exactly one of several keys, each its own parameter (`dataset: fashion_mnist` or `tensors:
    /// file.safetensors`): `owns` says which key writes a value back.
    let oneOf (get: 'r -> 'a) (choices: (Param<'a> * ('a -> bool)) list) : Fields<'r, 'a> =
        let names = choices |> List.map (fun (p, _) -> p.Info.Name)
        let listed = String.Join(" or ", names)
        { Params = choices |> List.map (fun (p, _) -> { p.Info with Doc = $"{p.Info.Doc} (give {listed})" })
          Default = None
          Run =
            fun ctx entries mapPos ->
                match entries |> List.filter (fun (k, _, _) -> List.contains k names) with
                | [] -> Decoded.fail [ Decode.error (Decode.field names.Head ctx) mapPos $"missing: give one of {listed}" None names ]
                | [ (key, _, node) ] ->
                    let p, _ = choices |> List.find (fun (p, _) -> p.Info.Name = key)
                    let c = Decode.field key ctx
                    let d = p.Decode c node
                    d |> Decoded.also (d.Value |> Option.map (p.Check >> Decode.located c node) |> Option.defaultValue [])
                | (first, _, _) :: (key, keyPos, _) :: _ ->
                    Decoded.fail [ Decode.error (Decode.field key ctx) keyPos $"give one of {listed}, not both (found {first} too)" (Some key) names ]
          Encode =
            fun r ->
                let v = get r
                choices |> List.filter (fun (_, owns) -> owns v) |> List.map (fun (p, _) -> p.Info.Name, p.Encode v)
          Issues =
            fun r ->
                let v = get r
                choices
                |> List.filter (fun (_, owns) -> owns v)
                |> List.collect (fun (p, _) -> Param.issues p v |> List.map (fun i -> { i with Path = FieldPath.join p.Info.Name i.Path })) }

    /// A mapping read through these fields; any other key is an error.
    let decoder (unknownMessage: string) (fields: Fields<'r, 'a>) : Decoder<'a> =
        fun ctx n ->
            match n with
            | Node.Map(entries, pos) ->
                let stray = Decode.strayKeys ctx entries (fields.Params |> List.map _.Name) unknownMessage
                Decoded.also stray (fields.Run ctx entries pos)
            | other -> Decoded.fail [ Decode.error ctx other.Pos "expected a mapping" (Some(Decode.shown other)) [] ]

    /// A section (a nested mapping) as a parameter of its parent.
    let section name doc (fields: Fields<'a, 'a>) : Param<'a> =
        { Info =
            { Name = name
              Type = "mapping"
              Default = fields.Default |> Option.map (fun _ -> "see fields")
              Allowed = String.Join(", ", fields.Params |> List.map _.Name)
              Doc = doc }
          Default = fields.Default
          Decode = decoder (sprintf "unknown key in %s" name) fields
          Encode = fields.Encode >> Out.Map
          Check = fun _ -> []
          Deep = fields.Issues }

type FieldsBuilder() =
    member _.BindReturn(x: Fields<'r, 'a>, f: 'a -> 'b) = Fields.map f x
    member _.MergeSources(a: Fields<'r, 'a>, b: Fields<'r, 'b>) = Fields.map2 (fun x y -> x, y) a b
    member _.Return(x: 'a) : Fields<'r, 'a> = Fields.ret x

[<AutoOpen>]
module FieldsBuilderInstance =
    /// fields { let! a = ... and! b = ... return ... }
    let fields = FieldsBuilder()

/// One case of a closed family (a method, a sampler, a metric), chosen by a tag key.
type Variant<'k> =
    { Name: string
      Doc: string
      Params: ParamInfo list
      Default: 'k option
      Run: Ctx -> (string * Pos * Node) list -> Pos -> Decoded<'k>
      /// None when the value is another case.
      Encode: 'k -> (string * Out) list option
      Issues: 'k -> Issue list option }

module Variant =
    let make name doc (fields: Fields<'p, 'p>) (wrap: 'p -> 'k) (unwrap: 'k -> 'p option) : Variant<'k> =
        { Name = name
          Doc = doc
          Params = fields.Params
          Default = fields.Default |> Option.map wrap
          Run = fun c e p -> fields.Run c e p |> Decoded.map wrap
          Encode = unwrap >> Option.map fields.Encode
          Issues = unwrap >> Option.map fields.Issues }

    /// A case without parameters.
    let constant name doc (value: 'k) : Variant<'k> =
        make name doc (Fields.ret ()) (fun () -> value) (fun k -> if k = value then Some() else None)

    let dflt (v: Variant<'k>) =
        match v.Default with
        | Some d -> d
        | None -> invalidOp (sprintf "'%s' has no default" v.Name)

    let encode (tagKey: string) (variants: Variant<'k> list) (k: 'k) : (string * Out) list =
        variants
        |> List.pick (fun v -> v.Encode k |> Option.map (fun kvs -> (tagKey, Out.Plain v.Name) :: kvs))

    let issues (variants: Variant<'k> list) (k: 'k) = variants |> List.pick (fun v -> v.Issues k)

    /// A mapping whose `tagKey` names the case; the case's parameters sit beside it. `extraKeys` are read by the caller.
    let decoder (tagKey: string) (noun: string) (extraKeys: string list) (variants: Variant<'k> list) : Decoder<string * 'k> =
        fun ctx n ->
            match n with
            | Node.Map(entries, pos) ->
                let names = variants |> List.map _.Name
                match entries |> List.tryFind (fun (k, _, _) -> k = tagKey) with
                | None -> Decoded.fail [ Decode.error (Decode.field tagKey ctx) pos "missing required field" None names ]
                | Some(_, _, tagNode) ->
                    Decode.choice noun (variants |> List.map (fun v -> v.Name, v)) (Decode.field tagKey ctx) tagNode
                    |> Decoded.bind (fun v ->
                        let message =
                            if v.Params.IsEmpty then sprintf "%s '%s' takes no parameters" noun v.Name
                            else sprintf "unknown parameter of %s '%s'" noun v.Name
                        let known = (v.Params |> List.map _.Name) @ (tagKey :: extraKeys)
                        let stray = Decode.strayKeys ctx entries known message
                        v.Run ctx entries pos |> Decoded.map (fun k -> v.Name, k) |> Decoded.also stray)
            | other -> Decoded.fail [ Decode.error ctx other.Pos ("expected a mapping with '" + tagKey + "'") (Some(Decode.shown other)) [] ]

    /// A family as one parameter (e.g. `sampler`).
    /// A family as one parameter (e.g. `sampler`) whose cases are read when used: entries registered later count.
    let paramOf name doc tagKey noun (dflt: 'k option) (variants: unit -> Variant<'k> list) : Param<'k> =
        let encode k = encode tagKey (variants ()) k |> Out.Map
        { Info =
            { Name = name
              Type = noun
              Default = dflt |> Option.map (encode >> Out.flow)
              Allowed = String.Join(" | ", variants () |> List.map _.Name)
              Doc = doc }
          Default = dflt
          Decode = fun c n -> decoder tagKey noun [] (variants ()) c n |> Decoded.map snd
          Encode = encode
          Check = fun _ -> []
          Deep = fun k -> issues (variants ()) k }

    /// A family as one parameter (e.g. `sampler`).
    let param name doc tagKey noun (dflt: 'k option) (variants: Variant<'k> list) : Param<'k> =
        paramOf name doc tagKey noun dflt (fun () -> variants)
