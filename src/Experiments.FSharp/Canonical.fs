/// The canonical text of a value, for cache keys: two values have the same text exactly when they are equal.
/// Floats are written in their shortest round-trip form (so 0.15 and 0.15000000001 differ), lists and arrays whole,
/// records and union cases with their field names, other objects (the engine's option classes) by their public
/// properties. F#'s `%A` layout is not canonical: it keeps 10 significant digits and the first 100 items of a list.
module Experiments.Canonical

open System
open System.Collections
open System.Globalization
open System.Reflection
open System.Text
open Microsoft.FSharp.Reflection

let private quote (s: string) =
    let b = StringBuilder("\"")
    for c in s do
        match c with
        | '"' -> b.Append("\\\"") |> ignore
        | '\\' -> b.Append("\\\\") |> ignore
        | c when Char.IsControl c -> b.AppendFormat("\\u{0:x4}", int c) |> ignore
        | c -> b.Append(c) |> ignore
    b.Append('"').ToString()

let rec private write (b: StringBuilder) (t: Type) (value: objnull) : unit =
    let append (s: string) = b.Append(s) |> ignore
    let inv = CultureInfo.InvariantCulture
    match value with
    | Null when FSharpType.IsUnion(t, true) ->
        // None, and unions whose null is a case (UseNullAsTrueValue)
        let case = FSharpType.GetUnionCases(t, true) |> Array.find (fun c -> c.GetFields().Length = 0)
        append case.Name
    | Null -> append "null"
    | NonNull v ->
    // A field declared as obj (a registered method's parameters) or an interface is written as what it holds; a union
    // case's runtime class is its union's.
    let t =
        if t = typeof<obj> || t.IsInterface || (t.IsAbstract && not (FSharpType.IsUnion(t, true))) then
            let runtime = v.GetType()
            match runtime.BaseType with
            | null -> runtime
            | parent when FSharpType.IsUnion(parent, true) -> parent
            | _ -> runtime
        else t
    match v with
    | :? string as s -> append (quote s)
    | :? float as f -> append (f.ToString("R", inv))
    | :? float32 as f -> append (f.ToString("R", inv) + "f")
    | :? decimal as d -> append (d.ToString(inv) + "m")
    | :? bool as x -> append (if x then "true" else "false")
    | :? char as c -> append (quote (string c))
    | :? IFormattable as n when t.IsPrimitive || t.IsEnum -> append (n.ToString(null, inv))
    | _ when t.IsEnum -> append (string v)
    | _ when FSharpType.IsTuple t ->
        append "("
        FSharpValue.GetTupleFields v |> Array.iteri (fun i x -> (if i > 0 then append ","); write b (FSharpType.GetTupleElements(t).[i]) x)
        append ")"
    | _ when FSharpType.IsRecord(t, true) ->
        append "{"
        FSharpType.GetRecordFields(t, true) |> Array.iteri (fun i p -> (if i > 0 then append ";"); append (p.Name + "="); write b p.PropertyType (p.GetValue v))
        append "}"
    | :? IEnumerable as items when t <> typeof<string> && (t.IsArray || (t.IsGenericType && t.GetGenericTypeDefinition() = typedefof<list<_>>) || not (FSharpType.IsUnion(t, true))) ->
        let itemType =
            match (if t.IsArray then t.GetElementType() elif t.IsGenericType then t.GetGenericArguments().[0] else null) with
            | null -> typeof<obj>
            | e -> e
        append "["
        let mutable first = true
        for x in items do
            if not first then append ","
            first <- false
            write b (match x with null -> itemType | x -> x.GetType()) x
        append "]"
    | _ when FSharpType.IsUnion(t, true) ->
        let case, fields = FSharpValue.GetUnionFields(v, t, true)
        append case.Name
        if fields.Length > 0 then
            append "("
            case.GetFields() |> Array.iteri (fun i p -> (if i > 0 then append ","); append (p.Name + "="); write b p.PropertyType fields.[i])
            append ")"
    | _ ->
        // An object of the engine (an options class): its public readable properties, by name.
        append ((match t.FullName with null -> t.Name | n -> n) + "{")
        t.GetProperties(BindingFlags.Public ||| BindingFlags.Instance)
        |> Array.filter (fun p -> p.CanRead && p.GetIndexParameters().Length = 0)
        |> Array.sortBy (fun p -> p.Name)
        |> Array.iteri (fun i p -> (if i > 0 then append ";"); append (p.Name + "="); write b p.PropertyType (p.GetValue v))
        append "}"

/// The canonical text of `value` (see the module's summary).
let text (value: 'T) : string =
    let b = StringBuilder()
    let boxed: objnull = box value
    let t = match boxed with null -> typeof<'T> | v when FSharpType.IsUnion(typeof<'T>, true) -> typeof<'T> | v -> v.GetType()
    write b t boxed
    b.ToString()
