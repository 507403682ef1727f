/// Temporary folders for tests: one fresh folder per test, never shared between tests, all under one folder of this
/// test process that Main removes when the tests end (the suite left about 1 GB behind per run before).
module TestFiles

open System
open System.IO

/// This test process's folder under /tmp/attribution-tests.
let private session = lazy (Path.Combine(Path.GetTempPath(), "attribution-tests", $"run-{Environment.ProcessId}-{Guid.NewGuid():N}"))

let freshDir (name: string) =
    let dir = Path.Combine(session.Value, $"{name}-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore
    dir

/// Removes every folder freshDir made in this process (called once, after the last test).
let removeAll () =
    if session.IsValueCreated && Directory.Exists session.Value then
        try Directory.Delete(session.Value, true) with :? IOException | :? UnauthorizedAccessException -> ()
