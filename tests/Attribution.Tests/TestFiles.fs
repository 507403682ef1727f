/// Temporary folders for tests: one fresh folder per test under /tmp, never shared between tests.
module TestFiles

open System
open System.IO

let freshDir (name: string) =
    let dir = Path.Combine(Path.GetTempPath(), "attribution-tests", $"{name}-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore
    dir
