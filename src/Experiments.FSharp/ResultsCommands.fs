/// `attribution results` and `attribution compare`: the results store (ResultsStore) read back as tables.
module Experiments.ResultsCommands

open System
open Experiments.ResultsStore

let private number (v: float) = if Double.IsNaN v then "—" else v.ToString("G6", Globalization.CultureInfo.InvariantCulture)

/// Lines of a table with left-aligned columns.
let private table (header: string list) (rows: string list list) =
    let widths = header |> List.mapi (fun i h -> (h :: (rows |> List.map (fun r -> r.[i]))) |> List.map String.length |> List.max)
    let line (cells: string list) = List.zip cells widths |> List.map (fun (c, w) -> c.PadRight w) |> String.concat "  " |> fun l -> l.TrimEnd()
    [ yield line header
      yield widths |> List.map (fun w -> String('-', w)) |> String.concat "  "
      for r in rows do yield line r ]
    |> String.concat "\n"

/// The suffixes of the rows that hold a scalar's 95% interval (metrics.csv writes NAME_ci95_low and NAME_ci95_high).
let private lowSuffix, highSuffix = "_ci95_low", "_ci95_high"

let private isIntervalEnd (row: ResultRow) = row.Name.EndsWith lowSuffix || row.Name.EndsWith highSuffix

/// A run's intervals, read once from its rows: the interval of a scalar row, if the run stored one.
let private intervalsOf (rows: ResultRow list) : ResultRow -> (float * float) option =
    let ends = rows |> List.filter (fun r -> r.X.IsNone && isIntervalEnd r) |> List.map (fun r -> (r.Section, r.Method, r.Target, r.Name), r.Value) |> Map.ofList
    fun row ->
        let endOf suffix = ends.TryFind((row.Section, row.Method, row.Target, row.Name + suffix))
        match row.X, endOf lowSuffix, endOf highSuffix with
        | None, Some low, Some high when not (Double.IsNaN low || Double.IsNaN high) -> Some(low, high)
        | _ -> None

/// A value with its interval, as the reports write it: `51.3 [50.1, 52.5]`.
let private withInterval (v: float) (interval: (float * float) option) =
    match interval with
    | Some(low, high) -> $"{number v} [{number low}, {number high}]"
    | None -> number v

/// The run an id or an unambiguous prefix of one names.
let resolve (output: string) (id: string) =
    match runs output None |> List.filter (fun r -> r.RunId.StartsWith id) with
    | [ run ] -> Ok run
    | [] -> Error $"no run '{id}' in {file output} (attribution results lists them)"
    | many -> Error $"""'{id}' names {many.Length} runs ({many |> List.map _.RunId |> String.concat ", "}); give more of the id"""

/// The runs, one a line; with `metric` (a metrics.csv name, e.g. accuracy_gt, or SECTION/NAME), one table of that
/// metric's scalar per run and method, so that a sweep's runs read as one table.
let list (output: string) (spec: string option) (metric: string option) =
    let found = runs output spec
    if found.IsEmpty then $"no runs recorded in {file output}"
    else
        match metric with
        | None ->
            table [ "run"; "finished (UTC)"; "spec"; "spec hash"; "commit"; "dataset"; "model"; "inputs"; "folder" ]
                [ for r in found ->
                    [ r.RunId; r.FinishedUtc; r.Spec; r.SpecHash.Substring(0, 12); (if r.Dirty then r.Commit + "+dirty" else r.Commit)
                      r.Dataset; r.Model; string r.Explained; r.Folder ] ]
        | Some metric ->
            let section, name = match metric.Split '/' with [| s; n |] -> Some s, n | _ -> None, metric
            let matches (row: ResultRow) = row.Name = name && row.X.IsNone && (section.IsNone || section = Some row.Section)
            let byRun = [ for r in found -> let all = rowsOf output r.RunId in r, intervalsOf all, all |> List.filter matches ]
            let methods = byRun |> List.collect (fun (_, _, rows) -> rows |> List.map _.Method) |> List.distinct
            if methods.IsEmpty then $"no run has a scalar named '{metric}'"
            else
                // each value with its 95% interval where the run stored one
                table ("run" :: "spec" :: methods)
                    [ for r, intervalOf, rows in byRun ->
                        r.RunId :: r.Spec :: [ for m in methods ->
                                                 rows |> List.tryFind (fun row -> row.Method = m)
                                                 |> Option.map (fun row -> withInterval row.Value (intervalOf row)) |> Option.defaultValue "" ] ]

/// Two runs side by side: what differs in their records and methods' parameters, then every number that differs
/// (all of them with `all`), with the difference.
let compare (output: string) (a: RunRecord) (b: RunRecord) (all: bool) =
    let recordLines =
        [ for label, x, y in
            [ "spec", a.Spec, b.Spec; "spec hash", a.SpecHash, b.SpecHash; "commit", a.Commit, b.Commit; "dataset", a.Dataset, b.Dataset
              "model", a.Model, b.Model; "seed", string a.Seed, string b.Seed; "inputs", string a.Explained, string b.Explained; "device", a.Device, b.Device ] do
            if x <> y || all then yield [ label; x; y ] ]
    let rowsA, rowsB = rowsOf output a.RunId, rowsOf output b.RunId
    let key (r: ResultRow) = r.Section, r.Method, r.Target, r.Name, r.X
    let parameters (rows: ResultRow list) = rows |> List.map (fun r -> r.Method, r.Parameters) |> List.distinct |> Map.ofList
    let pa, pb = parameters rowsA, parameters rowsB
    let parameterLines =
        [ for m in Seq.append pa.Keys pb.Keys |> Seq.distinct do
            let x, y = defaultArg (pa.TryFind m) "(absent)", defaultArg (pb.TryFind m) "(absent)"
            if x <> y then yield [ $"method {m}"; x; y ] ]
    // a scalar's interval ends are shown with it, not as numbers of their own (--all lists them too)
    let shownRows (rows: ResultRow list) = if all then rows else rows |> List.filter (isIntervalEnd >> not)
    let intervalOfA, intervalOfB = intervalsOf rowsA, intervalsOf rowsB
    let mapB = shownRows rowsB |> List.map (fun r -> key r, r) |> Map.ofList
    let mapA = shownRows rowsA |> List.map (fun r -> key r, r) |> Map.ofList
    let keys = (shownRows rowsA |> List.map key) @ (shownRows rowsB |> List.map key |> List.filter (fun k -> not (mapA.ContainsKey k))) |> List.distinct
    let same (x: float option) (y: float option) =
        match x, y with
        | Some x, Some y -> x = y || (Double.IsNaN x && Double.IsNaN y)
        | _ -> false
    let numberLines =
        [ for (section, methodId, target, name, x) as k in keys do
            let ra, rb = mapA.TryFind k, mapB.TryFind k
            let va, vb = ra |> Option.map _.Value, rb |> Option.map _.Value
            if all || not (same va vb) then
                let ia, ib = ra |> Option.bind intervalOfA, rb |> Option.bind intervalOfB
                let shown (row: ResultRow option) interval = match row with Some r -> withInterval r.Value interval | None -> "(absent)"
                let difference = match va, vb with Some p, Some q -> number (q - p) | _ -> ""
                // whether the difference is beyond both runs' uncertainty: their intervals apart, or overlapping
                let intervals =
                    match ia, ib with
                    | Some(lowA, highA), Some(lowB, highB) -> if highA < lowB || highB < lowA then "apart" else "overlap"
                    | _ -> ""
                let at = match x with Some v -> number v | None -> ""
                yield [ section; methodId; target; name; at; shown ra ia; shown rb ib; difference; intervals ] ]
    [ yield $"A = {a.RunId} ({a.Folder})"
      yield $"B = {b.RunId} ({b.Folder})"
      yield ""
      if not (recordLines @ parameterLines).IsEmpty then
          yield table [ "what"; "A"; "B" ] (recordLines @ parameterLines)
          yield ""
      if numberLines.IsEmpty then yield $"all {keys.Length} numbers are identical"
      else
          yield $"{numberLines.Length} of {keys.Length} numbers differ" + (if all then " or are listed by --all" else "") + ":"
          yield table [ "section"; "method"; "target"; "name"; "x"; "A"; "B"; "B - A"; "95% intervals" ] numberLines
          if numberLines |> List.exists (fun l -> l.[8] <> "") then
              yield ""
              yield "A value in brackets has its 95% bootstrap interval over the inputs; intervals that overlap do not resolve the difference." ]
    |> String.concat "\n"
