/// `inputs.csv` of a run folder: the test inputs the run explained, in the order of its maps and of every per-input
/// value, with each one's label and the model's prediction as the run computed it (on the run's device). The targets
/// follow from them: `ground_truth` explains the label, `predicted` the prediction. `attribution export` reads it back.
module Experiments.InputRecord

open System
open System.IO
open System.Text

[<Literal>]
let FileName = "inputs.csv"

[<Literal>]
let private Header = "position,test_index,label,prediction"

/// One explained input: its position among the explained inputs, its index in the test set, its label and prediction.
type ExplainedInput = { Position: int; TestIndex: int64; Label: int64; Prediction: int64 }

/// The file's text for the explained inputs (test-set indices, labels and predictions, in the explained order).
let render (indices: int64[]) (labels: int64[]) (predictions: int64[]) =
    let sb = StringBuilder()
    sb.Append(Header).Append('\n') |> ignore
    for i in 0 .. indices.Length - 1 do
        sb.Append($"{i},{indices.[i]},{labels.[i]},{predictions.[i]}\n") |> ignore
    sb.ToString()

/// The explained inputs recorded in a run folder, or why they cannot be read.
let read (runFolder: string) : Result<ExplainedInput[], string> =
    let file = Path.Combine(runFolder, FileName)
    if not (File.Exists file) then Error $"{file} is missing"
    else
        let lines = File.ReadAllLines file |> Array.filter (String.IsNullOrWhiteSpace >> not)
        if lines.Length = 0 || lines.[0] <> Header then Error $"{file}: the first line is not '{Header}'"
        else
            let parse (n: int) (line: string) =
                match line.Split ',' |> Array.map Int64.TryParse with
                | [| (true, p); (true, index); (true, label); (true, prediction) |] when p = int64 (n - 1) ->
                    Ok { Position = int p; TestIndex = index; Label = label; Prediction = prediction }
                | _ -> Error $"{file}:{n + 1}: not '{n - 1},<test index>,<label>,<prediction>' (found '{line}')"
            let rows = lines |> Array.mapi (fun n line -> (n, line)) |> Array.skip 1 |> Array.map (fun (n, line) -> parse n line)
            match rows |> Array.tryPick (function Error e -> Some e | Ok _ -> None) with
            | Some e -> Error e
            | None -> Ok(rows |> Array.choose (function Ok r -> Some r | Error _ -> None))
