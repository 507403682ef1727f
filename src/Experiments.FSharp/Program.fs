module Program

[<EntryPoint>]
let main argv = Experiments.Cli.run argv
