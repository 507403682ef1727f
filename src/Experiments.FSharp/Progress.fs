/// Progress lines for long steps, on stderr, at most a few per second.
module Experiments.Progress

open System.Diagnostics

let private clock = Stopwatch.StartNew()
let mutable private last = -1000000L

/// The least time between two progress lines of a step, in milliseconds: $ATTRIBUTION_PROGRESS_INTERVAL seconds (0
/// prints every line, which logs and tests that wait for a phase want), 2 s by default.
let private interval =
    match System.Double.TryParse(System.Environment.GetEnvironmentVariable "ATTRIBUTION_PROGRESS_INTERVAL", System.Globalization.CultureInfo.InvariantCulture) with
    | true, seconds when seconds >= 0.0 -> int64 (seconds * 1000.0)
    | _ -> 2000L

/// Reports `done` of `total` for `step`; always prints the final line.
let report (step: string) (doneCount: int64) (total: int64) (message: string) =
    let now = clock.ElapsedMilliseconds
    if doneCount >= total || now - last >= interval then
        last <- now
        let percent = if total > 0L then 100.0 * float doneCount / float total else 100.0
        eprintfn "[%7.1fs] %-40s %5.1f%%  %s" (float now / 1000.0) step percent message

/// A one-off line.
let say (text: string) = eprintfn "[%7.1fs] %s" (float clock.ElapsedMilliseconds / 1000.0) text

/// A duration for a person: "45 s", "12 min", "1 h 05 min".
let duration (seconds: float) =
    if seconds < 90.0 then sprintf "%.0f s" seconds
    elif seconds < 5400.0 then sprintf "%.0f min" (seconds / 60.0)
    else sprintf "%d h %02d min" (int seconds / 3600) (int seconds % 3600 / 60)
