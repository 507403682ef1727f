module Program
[<EntryPoint>]
let main argv = 0
