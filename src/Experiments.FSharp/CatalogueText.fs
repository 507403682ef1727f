/// The catalogue as text: `attribution list` (every method, sampler, metric and section with its parameters and
/// defaults) and the tables of docs/dsl.md (`attribution list --markdown`), from the declarations specs are read with.
module Experiments.CatalogueText

open System
open Experiments
open Experiments.Vocabulary

// --- `list` ----------------------------------------------------------------------------------

let private describeParams (ps: ParamInfo list) =
    if ps.IsEmpty then [ "      (no parameters)" ]
    else
        ps
        |> List.map (fun p ->
            let dflt = p.Default |> Option.defaultValue "required"
            sprintf "      %-16s %-18s default %s; allowed %s. %s" p.Name p.Type dflt p.Allowed p.Doc)

let private describeVariants (title: string) (vs: Variant<'k> list) =
    title
    :: (vs |> List.collect (fun v -> sprintf "  %-24s %s" v.Name v.Doc :: describeParams v.Params))

let private describeSection (name: string) (ps: ParamInfo list) = sprintf "  %s" name :: describeParams ps

/// The text of `list`: methods, samplers, metrics and sections, each with parameters and defaults.
let describe () : string =
    [ yield! describeVariants "Methods (methods: - method: NAME, parameters beside it; id defaults to NAME)" (Catalogue.methods ())
      yield ""
      yield! describeVariants "Samplers (sampler: { kind: NAME, ... })" (Catalogue.samplers ())
      yield ""
      yield! describeVariants "Metrics (metrics: - metric: NAME, parameters beside it)" (Catalogue.metrics ())
      yield ""
      yield "Sections"
      yield! describeSection "(top level)" (Catalogue.specFields.Params |> List.filter (fun p -> p.Type <> "mapping"))
      yield! describeSection "data" Catalogue.Data.fields.Params
      yield! describeSection "model" Catalogue.Model.fields.Params
      yield! describeSection "explain" Catalogue.Explain.fields.Params
      yield! describeSection "report" Catalogue.Report.fields.Params
      yield! describeSection "full" Catalogue.Full.fields.Params ]
    |> String.concat Environment.NewLine

// --- the docs' tables ----------------------------------------------------------------------

let private cell (text: string) = text.Replace("|", "\\|").Replace("\n", " ")

let private markdownParams (ps: ParamInfo list) =
    if ps.IsEmpty then "none"
    else
        ps
        |> List.map (fun p -> sprintf "`%s` (%s; %s)" p.Name (p.Default |> Option.defaultValue "required") p.Allowed)
        |> String.concat ", "
        |> cell

let private markdownTable (key: string) (third: string) (vs: Variant<'k> list) =
    [ yield $"| {key} | parameters (default; allowed) | {third} |"
      yield "|---|---|---|"
      for v in vs do
          yield $"| `{v.Name}` | {markdownParams v.Params} | {cell v.Doc} |" ]
    |> String.concat "\n"

/// The tables of docs/dsl.md (methods, samplers, metrics), from the same declarations YAML is read with;
/// `attribution list --markdown` prints them, and a test checks the docs hold them as printed.
let markdown () : (string * string) list =
    [ "methods", markdownTable "method" "definition" (Catalogue.methods ())
      "samplers", markdownTable "kind" "distribution" (Catalogue.samplers ())
      "metrics", markdownTable "metric" "definition" (Catalogue.metrics ()) ]

