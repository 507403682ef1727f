/// The results store: every run's numbers kept across runs, read back exactly, compared, and written safely by
/// concurrent runs.
module ResultsStoreTests

open System
open System.IO
open System.Threading.Tasks
open Expecto
open Experiments
open Experiments.ResultsStore

let private record (id: string) (spec: string) =
    { RunId = id; Spec = spec; SpecHash = String('a', 64); Commit = "abc123"; Dirty = false; Dataset = "FashionMnist"; Model = "FashionCnn"
      Seed = 7; Explained = 100; Device = "cpu"; StartedUtc = "2026-12-03T10:00:00Z"; FinishedUtc = $"2026-12-03T10:00:{id.Length:D2}Z"; Folder = $"/runs/{spec}" }

let private csv (auc: float) =
    String.concat "\n"
        [ "section,method,target,name,x,value"
          "negative_perturbation,sg,,accuracy_gt,0.1,45"
          $"negative_perturbation_auc,sg,,accuracy_gt,,{auc.ToString(Globalization.CultureInfo.InvariantCulture)}"
          "rank_agreement,sg,ig,spearman,,NaN"
          "model,,,test_accuracy,,0.8912345678901234" ]

[<Tests>]
let tests =
    testList "results store" [
        test "a run's rows read back exactly (NaN as NaN, x absent or present), runs are listed by spec, and compare shows exactly the numbers that differ" {
            let output = TestFiles.freshDir "results-store"
            add output (record "r1" "sweep") (rowsOfCsv (csv 40.15) (fun m -> $"params of {m}"))
            add output (record "r22" "sweep") (rowsOfCsv (csv 39.725) (fun m -> $"params of {m}"))
            add output (record "r333" "other") (rowsOfCsv (csv 1.0) (fun _ -> ""))
            Expect.equal (runs output None |> List.map _.RunId) [ "r1"; "r22"; "r333" ] "every run, in order"
            Expect.equal (runs output (Some "sweep") |> List.map _.RunId) [ "r1"; "r22" ] "by spec"
            let rows = rowsOf output "r1"
            Expect.equal rows.Length 4 "four numbers"
            Expect.equal rows.[0].X (Some 0.1) "x stored"
            Expect.equal rows.[1].X None "no x"
            Expect.equal rows.[1].Value 40.15 "the value"
            Expect.isTrue (Double.IsNaN rows.[2].Value) "NaN read back as NaN"
            Expect.equal rows.[3].Value 0.8912345678901234 "every digit of a double"
            Expect.equal rows.[0].Parameters "params of sg" "the method's parameters"
            let a, b = runs output None |> fun r -> r.[0], r.[1]
            let text = ResultsCommands.compare output a b false
            Expect.stringContains text "1 of 4 numbers differ" "only the AUC differs (NaN equals NaN)"
            Expect.stringContains text "-0.425" "with its difference"
            let sweep = ResultsCommands.list output (Some "sweep") (Some "negative_perturbation_auc/accuracy_gt")
            Expect.stringContains sweep "40.15" "one table across runs"
            Expect.stringContains sweep "39.725" "one table across runs"
            Expect.isError (ResultsCommands.resolve output "r") "an ambiguous prefix"
            Expect.isOk (ResultsCommands.resolve output "r3") "a unique prefix"
        }

        test "relocate re-points the records of runs moved from the previous layout, and only those" {
            let output = TestFiles.freshDir "results-relocate"
            let at (id: string) (spec: string) (folder: string) = { record id spec with Folder = folder }
            add output (at "r1" "q" "/o/.runs/q/20261201-100000-aaaaaa") []
            add output (at "r2" "qq" "/o/.runs/qq/20261201-100000-bbbbbb") []
            add output (at "r3" "q" "/o/q/20261203-100000-cccccc") []
            relocate output "/o/.runs/q" "/o/q"
            Expect.equal (runs output None |> List.map _.Folder)
                [ "/o/q/20261201-100000-aaaaaa"; "/o/.runs/qq/20261201-100000-bbbbbb"; "/o/q/20261203-100000-cccccc" ]
                "q's earlier run moved; qq's (a name that merely starts alike) and the new one untouched"
        }

        test "compare and results show a scalar with its interval, and say whether two runs' intervals are apart or overlap" {
            let output = TestFiles.freshDir "results-intervals"
            let withInterval (auc: float) (low: float) (high: float) =
                let text (v: float) = v.ToString(Globalization.CultureInfo.InvariantCulture)
                csv auc + "\n" + String.concat "\n" [ $"negative_perturbation_auc,sg,,accuracy_gt_ci95_low,,{text low}"; $"negative_perturbation_auc,sg,,accuracy_gt_ci95_high,,{text high}" ]
            add output (record "a" "sweep") (rowsOfCsv (withInterval 40.15 39.0 41.3) (fun _ -> ""))
            add output (record "bb" "sweep") (rowsOfCsv (withInterval 35.0 34.0 36.0) (fun _ -> ""))
            add output (record "ccc" "sweep") (rowsOfCsv (withInterval 40.5 39.5 41.5) (fun _ -> ""))
            let a, b, c = runs output None |> fun r -> r.[0], r.[1], r.[2]
            let apart = ResultsCommands.compare output a b false
            Expect.stringContains apart "1 of 4 numbers differ" "the interval ends are shown with their scalar, not counted as numbers"
            Expect.stringContains apart "40.15 [39, 41.3]" "A's value with its interval"
            Expect.stringContains apart "35 [34, 36]" "B's value with its interval"
            Expect.stringContains apart "apart" "[39, 41.3] and [34, 36] do not overlap"
            let overlap = ResultsCommands.compare output a c false
            Expect.stringContains overlap "overlap" "[39, 41.3] and [39.5, 41.5] overlap"
            Expect.isFalse (overlap.Contains "apart") "not apart"
            Expect.stringContains (ResultsCommands.compare output a b true) "accuracy_gt_ci95_low" "--all lists the interval ends too"
            let sweep = ResultsCommands.list output (Some "sweep") (Some "negative_perturbation_auc/accuracy_gt")
            Expect.stringContains sweep "35 [34, 36]" "the sweep's table shows each run's interval"
        }

        test "concurrent runs all land in the database, each whole" {
            let output = TestFiles.freshDir "results-concurrent"
            let writers = [| for i in 0 .. 7 -> Task.Run(fun () -> add output (record $"run{i}" "same") (rowsOfCsv (csv (float i)) (fun _ -> ""))) |]
            Task.WaitAll writers
            let all = runs output None
            Expect.equal all.Length 8 "every run"
            for r in all do Expect.equal (rowsOf output r.RunId).Length 4 $"{r.RunId} whole"
        }
    ]
