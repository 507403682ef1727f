/// What an export holds, as data: one entry per file with its tensors (or columns), their shapes and one sentence each
/// on how the values were computed, and for each per-input value the reported value it reduces to. Written as
/// manifest.json (snake_case keys, for Python) and summarised in the export's README.md.
module Experiments.ExportManifest

open System
open System.Text.Json
open TorchSharp

/// A fact about a file (its metadata): text, an integer (a seed, a count) or a number.
type Fact =
    | Text of string
    | Integer of int64
    | Number of float
    | Texts of string list

/// The reported value a per-input tensor reduces to: its value, where metrics.json holds it, and how to reduce.
type Summary = { Value: float; Where: string; Reduction: string }

type TensorEntry =
    { Name: string
      DType: string
      Shape: int64[]
      Description: string
      Summarises: Summary option }

type FileEntry =
    { /// Relative to the export, '/'-separated.
      Path: string
      /// "safetensors", "json", "csv", "yaml" or "text".
      Format: string
      Description: string
      Tensors: TensorEntry list
      /// (name, description) of each column of a CSV file.
      Columns: (string * string) list
      Facts: (string * Fact) list }

/// A metric whose result has no per-input values, and why.
type WithoutPerInput = { Metric: string; Methods: string list; Why: string }

type Manifest =
    { Run: (string * Fact) list
      Explained: int
      Classes: string list
      Files: FileEntry list
      WithoutPerInput: WithoutPerInput list }

/// The safetensors dtype name of a tensor's element type.
let dtypeNameOf (dtype: torch.ScalarType) =
    match dtype with
    | torch.ScalarType.Float32 -> "F32"
    | torch.ScalarType.Float64 -> "F64"
    | torch.ScalarType.Int64 -> "I64"
    | torch.ScalarType.Int32 -> "I32"
    | torch.ScalarType.Byte -> "U8"
    | torch.ScalarType.Bool -> "BOOL"
    | other -> string other

let dtypeName (t: torch.Tensor) = dtypeNameOf t.dtype

/// The entry of a tensor written a block at a time (never whole in memory), by its dtype and shape.
let tensorOfShape (name: string) (dtype: torch.ScalarType) (shape: int64[]) (description: string) =
    { Name = name; DType = dtypeNameOf dtype; Shape = shape; Description = description; Summarises = None }

/// The entry of a tensor as written.
let tensor (name: string) (t: torch.Tensor) (description: string) =
    { Name = name; DType = dtypeName t; Shape = t.shape; Description = description; Summarises = None }

/// A file entry without tensors or columns.
let file (path: string) (format: string) (description: string) =
    { Path = path; Format = format; Description = description; Tensors = []; Columns = []; Facts = [] }

let private number (w: Utf8JsonWriter) (name: string) (x: float) =
    // JSON has no NaN or infinity: those are written as strings, as Python's float() reads them.
    if Double.IsFinite x then w.WriteNumber(name, x)
    else w.WriteString(name, (if Double.IsNaN x then "nan" elif x > 0.0 then "inf" else "-inf"))

let private fact (w: Utf8JsonWriter) (name: string) (value: Fact) =
    match value with
    | Text s -> w.WriteString(name, s)
    | Integer i -> w.WriteNumber(name, i)
    | Number x -> number w name x
    | Texts items ->
        w.WriteStartArray name
        for item in items do w.WriteStringValue item
        w.WriteEndArray()

let private facts (w: Utf8JsonWriter) (name: string) (items: (string * Fact) list) =
    w.WriteStartObject name
    for k, v in items do fact w k v
    w.WriteEndObject()

let private tensorEntry (w: Utf8JsonWriter) (t: TensorEntry) =
    w.WriteStartObject()
    w.WriteString("name", t.Name)
    w.WriteString("dtype", t.DType)
    w.WriteStartArray "shape"
    for d in t.Shape do w.WriteNumberValue d
    w.WriteEndArray()
    w.WriteString("description", t.Description)
    match t.Summarises with
    | Some s ->
        w.WriteStartObject "summarises"
        number w "value" s.Value
        w.WriteString("where", s.Where)
        w.WriteString("reduction", s.Reduction)
        w.WriteEndObject()
    | None -> ()
    w.WriteEndObject()

let private fileEntry (w: Utf8JsonWriter) (f: FileEntry) =
    w.WriteStartObject()
    w.WriteString("path", f.Path)
    w.WriteString("format", f.Format)
    w.WriteString("description", f.Description)
    if not f.Tensors.IsEmpty then
        w.WriteStartArray "tensors"
        for t in f.Tensors do tensorEntry w t
        w.WriteEndArray()
    if not f.Columns.IsEmpty then
        w.WriteStartArray "columns"
        for n, d in f.Columns do
            w.WriteStartObject()
            w.WriteString("name", n)
            w.WriteString("description", d)
            w.WriteEndObject()
        w.WriteEndArray()
    if not f.Facts.IsEmpty then facts w "metadata" f.Facts
    w.WriteEndObject()

/// The reductions `summarises.reduction` names, as the manifest explains them.
let reductions =
    [ Results.PerInputs.Mean, "the plain mean of the values"
      Results.PerInputs.MeanOfDefined, "the mean of the values that are not NaN (NaN marks an input for which the value is undefined)" ]

/// manifest.json's text.
let toJson (m: Manifest) =
    use stream = new IO.MemoryStream()
    do
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true, Encoder = Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping))
        w.WriteStartObject()
        w.WriteString("format", "attribution-export 1")
        facts w "run" m.Run
        w.WriteNumber("explained_inputs", m.Explained)
        w.WriteStartArray "classes"
        for c in m.Classes do w.WriteStringValue c
        w.WriteEndArray()
        facts w "reductions" (reductions |> List.map (fun (k, v) -> k, Text v))
        w.WriteStartArray "files"
        for f in m.Files do fileEntry w f
        w.WriteEndArray()
        w.WriteStartArray "metrics_without_per_input_values"
        for x in m.WithoutPerInput do
            w.WriteStartObject()
            fact w "metric" (Text x.Metric)
            fact w "methods" (Texts x.Methods)
            fact w "why" (Text x.Why)
            w.WriteEndObject()
        w.WriteEndArray()
        w.WriteEndObject()
    Text.Encoding.UTF8.GetString(stream.ToArray()) + "\n"
