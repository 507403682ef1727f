module Main
open Expecto
[<EntryPoint>]
let main argv =
    let code = runTestsInAssemblyWithCLIArgs [] argv
    TestFiles.removeAll ()
    code
