/// The results of every run, kept across runs in one SQLite database beside the run folders
/// (`{output}/results.sqlite`): a row per run (id, spec, spec hash, commit, dataset, model, times) and a row per
/// number of its metrics.csv, tagged with the method's parameters. A run's rows go in one transaction, so the database
/// never holds half a run; SQLite's locking (with a busy timeout) lets concurrent runs write it.
module Experiments.ResultsStore

open System
open System.IO
open Microsoft.Data.Sqlite

/// The database's file under an output folder.
let file (output: string) = Path.Combine(Path.GetFullPath(RunFolder.expandHome output), "results.sqlite")

let private schema =
    """
    CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, spec TEXT NOT NULL, spec_hash TEXT NOT NULL, commit_id TEXT NOT NULL, dirty INTEGER NOT NULL,
        dataset TEXT NOT NULL, model TEXT NOT NULL, seed INTEGER NOT NULL, explained INTEGER NOT NULL, device TEXT NOT NULL,
        started_utc TEXT NOT NULL, finished_utc TEXT NOT NULL, folder TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS rows (
        run_id TEXT NOT NULL REFERENCES runs(run_id), section TEXT NOT NULL, method TEXT NOT NULL, parameters TEXT NOT NULL,
        target TEXT NOT NULL, name TEXT NOT NULL, x REAL, value REAL);
    CREATE INDEX IF NOT EXISTS rows_by_run ON rows(run_id);
    """

let private connect (path: string) =
    Directory.CreateDirectory(match Path.GetDirectoryName path with null -> "." | d -> d) |> ignore
    let connection = new SqliteConnection($"Data Source={path};Default Timeout=60;Pooling=False")
    connection.Open()
    // WAL: readers do not block the writer; the busy timeout makes a second writer wait instead of failing
    for pragma in [ "PRAGMA journal_mode=WAL;"; "PRAGMA busy_timeout=60000;" ] do
        use c = connection.CreateCommand()
        c.CommandText <- pragma
        c.ExecuteNonQuery() |> ignore
    use c = connection.CreateCommand()
    c.CommandText <- schema
    c.ExecuteNonQuery() |> ignore
    connection


/// What a run's row says.
type RunRecord =
    { RunId: string
      Spec: string
      SpecHash: string
      Commit: string
      Dirty: bool
      Dataset: string
      Model: string
      Seed: int
      Explained: int
      Device: string
      StartedUtc: string
      FinishedUtc: string
      Folder: string }

/// One number of a run (a line of metrics.csv, with the method's parameters).
type ResultRow =
    { Section: string
      Method: string
      Parameters: string
      Target: string
      Name: string
      X: float option
      Value: float }

/// The rows of metrics.csv text (as Report writes it: no quoted fields).
let rowsOfCsv (csv: string) (parameters: string -> string) =
    let number (s: string) = Double.Parse(s, Globalization.CultureInfo.InvariantCulture)
    [ for line in csv.Replace("\r\n", "\n").Split('\n', StringSplitOptions.RemoveEmptyEntries) |> Array.skip 1 do
        match line.Split ',' with
        | [| section; methodId; target; name; x; value |] ->
            yield { Section = section; Method = methodId; Parameters = parameters methodId; Target = target; Name = name
                    X = (if x = "" then None else Some(number x)); Value = number value }
        | _ -> failwith $"metrics.csv line not understood: {line}" ]

/// Adds a run and its rows, in one transaction.
let add (output: string) (run: RunRecord) (rows: ResultRow list) =
    use connection = connect (file output)
    use transaction = connection.BeginTransaction()
    use insertRun = connection.CreateCommand()
    insertRun.Transaction <- transaction
    insertRun.CommandText <-
        "INSERT INTO runs VALUES ($id, $spec, $hash, $commit, $dirty, $dataset, $model, $seed, $explained, $device, $started, $finished, $folder)"
    for name, value in
        [ "$id", box run.RunId; "$spec", box run.Spec; "$hash", box run.SpecHash; "$commit", box run.Commit; "$dirty", box (if run.Dirty then 1 else 0)
          "$dataset", box run.Dataset; "$model", box run.Model; "$seed", box run.Seed; "$explained", box run.Explained; "$device", box run.Device
          "$started", box run.StartedUtc; "$finished", box run.FinishedUtc; "$folder", box run.Folder ] do
        insertRun.Parameters.AddWithValue(name, value) |> ignore
    insertRun.ExecuteNonQuery() |> ignore
    use insertRow = connection.CreateCommand()
    insertRow.Transaction <- transaction
    insertRow.CommandText <- "INSERT INTO rows VALUES ($id, $section, $method, $parameters, $target, $name, $x, $value)"
    let p (name: string) = insertRow.Parameters.Add(name, SqliteType.Text)
    let id, section, methodP, parameters, target, nameP = p "$id", p "$section", p "$method", p "$parameters", p "$target", p "$name"
    let x = insertRow.Parameters.Add("$x", SqliteType.Real)
    let value = insertRow.Parameters.Add("$value", SqliteType.Real)
    for r in rows do
        id.Value <- run.RunId
        section.Value <- r.Section
        methodP.Value <- r.Method
        parameters.Value <- r.Parameters
        target.Value <- r.Target
        nameP.Value <- r.Name
        x.Value <- (match r.X with Some v -> box v | None -> box DBNull.Value)
        // NaN is not a REAL in SQLite: stored as NULL (a metric undefined for this run)
        value.Value <- (if Double.IsNaN r.Value then box DBNull.Value else box r.Value)
        insertRow.ExecuteNonQuery() |> ignore
    transaction.Commit()

/// Re-points the records of runs whose folders moved from under `before` to under `after` (the run folders of an
/// earlier layout, taken over by RunFolder.publish).
let relocate (output: string) (before: string) (after: string) =
    let path = file output
    if File.Exists path then
        use connection = connect path
        use c = connection.CreateCommand()
        c.CommandText <- "UPDATE runs SET folder = $after || substr(folder, length($before) + 1) WHERE substr(folder, 1, length($before)) = $before"
        let slash (p: string) = p.TrimEnd(Path.DirectorySeparatorChar) + string Path.DirectorySeparatorChar
        c.Parameters.AddWithValue("$before", slash before) |> ignore
        c.Parameters.AddWithValue("$after", slash after) |> ignore
        c.ExecuteNonQuery() |> ignore

let private readRun (r: SqliteDataReader) =
    { RunId = r.GetString 0; Spec = r.GetString 1; SpecHash = r.GetString 2; Commit = r.GetString 3; Dirty = r.GetInt32 4 <> 0
      Dataset = r.GetString 5; Model = r.GetString 6; Seed = r.GetInt32 7; Explained = r.GetInt32 8; Device = r.GetString 9
      StartedUtc = r.GetString 10; FinishedUtc = r.GetString 11; Folder = r.GetString 12 }

/// The runs in the database, oldest first; `spec`: only the runs of that spec name.
let runs (output: string) (spec: string option) =
    let path = file output
    if not (File.Exists path) then []
    else
        use connection = connect path
        use c = connection.CreateCommand()
        c.CommandText <- "SELECT * FROM runs WHERE ($spec IS NULL OR spec = $spec) ORDER BY finished_utc, run_id"
        c.Parameters.AddWithValue("$spec", (match spec with Some s -> box s | None -> box DBNull.Value)) |> ignore
        use r = c.ExecuteReader()
        [ while r.Read() do yield readRun r ]

/// The rows of a run.
let rowsOf (output: string) (runId: string) =
    use connection = connect (file output)
    use c = connection.CreateCommand()
    c.CommandText <- "SELECT section, method, parameters, target, name, x, value FROM rows WHERE run_id = $id ORDER BY rowid"
    c.Parameters.AddWithValue("$id", runId) |> ignore
    use r = c.ExecuteReader()
    [ while r.Read() do
        yield { Section = r.GetString 0; Method = r.GetString 1; Parameters = r.GetString 2; Target = r.GetString 3; Name = r.GetString 4
                X = (if r.IsDBNull 5 then None else Some(r.GetDouble 5)); Value = (if r.IsDBNull 6 then nan else r.GetDouble 6) } ]
