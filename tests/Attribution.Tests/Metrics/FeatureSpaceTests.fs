/// The perturbation metrics over a feature space the toolkit does not ship: columns of a table, some of them missing in
/// some rows. Insertion/deletion, Sensitivity-N and negative perturbation run through the same code as pixels and
/// tokens, and give what an additive model with its exact attribution must give.
module FeatureSpaceTests

open System
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Metrics

/// Rows [B, F] of a table (float64); <c>present</c> [B, F] marks the columns a row has (None: all). A removed column
/// becomes 0; a missing column is never touched. The "model" is any function of rows [N, F] to logits.
type ColumnSpace(model: Tensor -> Tensor, rows: Tensor, present: Tensor option) =
    interface IFeatureSpace with
        member _.Count = rows.shape.[0]
        member _.Slots = rows.shape.[1]
        member _.Real = match present with Some p -> p | None -> null
        member _.Substrate = "zero"
        member _.Scores(maps) =
            if maps.shape <> rows.shape then raise (ArgumentException $"maps must be [{rows.shape.[0]}, {rows.shape.[1]}]")
            maps.detach().cpu()
        member _.Inputs = rows
        member this.Perturb(atSubstrate) =
            let space = this :> IFeatureSpace
            FeatureSpace.CheckMask(space, atSubstrate)
            let n, k, f = rows.shape.[0], atSubstrate.shape.[1], rows.shape.[1]
            let mask = match present with Some p -> atSubstrate.logical_and(p.unsqueeze(1L)) | None -> atSubstrate
            rows.unsqueeze(1L).expand(n, k, f).masked_fill(mask, 0.0).contiguous().view(n * k, f)
        member _.Logits(inputs, batchSize) =
            use noGrad = no_grad()
            let parts = [| for start in 0L .. int64 batchSize .. inputs.shape.[0] - 1L -> model (inputs.narrow(0L, start, min (int64 batchSize) (inputs.shape.[0] - start))) |]
            cat(parts, 0L)
        member _.Rows(indices) = ColumnSpace(model, FeatureSpace.Take(rows, indices), present |> Option.map (fun p -> FeatureSpace.Take(p, indices))) :> IFeatureSpace

let private columns = 6
let private weights = [| 1.5; -0.7; 2.2; 0.3; -1.9; 0.9 |]
/// Logits [z, -z] with z = rows . w: a column's contribution to the logit of class c is exactly +-w_j x_j.
let private additive (x: Tensor) =
    let z = x.matmul(tensor(weights).view(-1L, 1L)).squeeze(1L)
    stack([| z; z.neg() |], 1L)

let private rowCount = 9
let private values =
    let rng = Random(11)
    Array.init rowCount (fun _ -> Array.init columns (fun _ -> rng.NextDouble() * 4.0 - 2.0))
/// Columns each row has: all in the first rows, 2 .. 5 of them in the others (missing ones hold 0).
let private has = Array.init rowCount (fun i -> Array.init columns (fun j -> i < 3 || (j + i) % columns < 2 + i % 4))
let private classes = Array.init rowCount (fun i -> int64 (i % 2))
let private sign c = if c = 0L then 1.0 else -1.0
/// Exact contribution of each column to the target's logit, 0 where missing.
let private contributions (present: bool[][]) = Array.init rowCount (fun i -> Array.init columns (fun j -> if present.[i].[j] then sign classes.[i] * weights.[j] * values.[i].[j] else 0.0))

let private space (present: bool[][] option) =
    let x = values |> Array.mapi (fun i row -> row |> Array.mapi (fun j v -> match present with Some p when not p.[i].[j] -> 0.0 | _ -> v))
    ColumnSpace(additive, tensor(array2D x), present |> Option.map (fun p -> tensor(array2D p))) :> IFeatureSpace

let private sigmoid (x: float) = 1.0 / (1.0 + exp -x)

/// The oracle: p(target) after the top-c real columns (by exact contribution) are removed (deletion) or the only ones revealed (insertion).
let private oracle (game: PerturbationGame) (c: float[]) (real: bool[]) (count: int) =
    let order = [| 0 .. columns - 1 |] |> Array.filter (fun j -> real.[j]) |> Array.sortByDescending (fun j -> c.[j])
    let top = order |> Array.truncate count
    let kept = if game = PerturbationGame.Deletion then order |> Array.except top else top
    sigmoid (2.0 * (kept |> Array.sumBy (fun j -> c.[j])))

let private closeCurves (actual: float[][]) (expected: float[][]) what =
    for i in 0 .. actual.Length - 1 do
        for s in 0 .. actual.[i].Length - 1 do
            Expect.floatClose { absolute = 1e-12; relative = 1e-12 } actual.[i].[s] expected.[i].[s] $"{what}: row {i}, step {s}"

[<Tests>]
let tests =
    testList "Metrics.FeatureSpace (a user's column space)" [
        test "insertion/deletion: an additive model with its exact contributions gives the oracle curves, one column per step and on a fraction grid of each row's own columns" {
            use scope = NewDisposeScope()
            for present, schedule in [ None, StepSchedule.FeaturesPerStep(1L) :> StepSchedule; Some has, StepSchedule.FractionGrid(4) ] do
                let real = present |> Option.defaultValue (Array.init rowCount (fun _ -> Array.create columns true))
                let c = contributions real
                use g = new Generator(5UL, CPU)
                let r = InsertionDeletion.Play(space present, tensor(array2D c), tensor(classes), schedule, g, 7)
                let counts i = [| for f in r.Deletion.Fractions -> int (Math.Round(f * float (Array.sumBy (fun b -> if b then 1 else 0) real.[i]), MidpointRounding.ToEven)) |]
                let expected game = Array.init rowCount (fun i -> counts i |> Array.map (oracle game c.[i] real.[i]))
                closeCurves r.Deletion.Curves (expected PerturbationGame.Deletion) $"{schedule} deletion"
                closeCurves r.Insertion.Curves (expected PerturbationGame.Insertion) $"{schedule} insertion"
                Expect.isLessThan r.Deletion.MeanAuc r.Insertion.MeanAuc "the exact attribution: deletion below insertion"
        }

        test "Sensitivity-N: a linear model with gradient x input gives correlation 1 at every size, with all columns and with missing ones (rows too small for a size skipped)" {
            use scope = NewDisposeScope()
            for present in [ None; Some has ] do
                let real = present |> Option.defaultValue (Array.init rowCount (fun _ -> Array.create columns true))
                let sizes: SubsetSize[] = [| SubsetSize.Count 1; SubsetSize.Count 2; SubsetSize.Count 4; SubsetSize.Fraction 0.5 |]
                let r = SensitivityN.Correlate(space present, tensor(array2D (contributions real)), tensor(classes), sizes, 12, 3L, 24)
                for k, size in Array.indexed sizes do
                    let skipped = real |> Array.filter (fun row -> (size.For(int64 (Array.sumBy (fun b -> if b then 1 else 0) row))).HasValue |> not) |> Array.length
                    Expect.equal r.Skipped.[k] skipped $"{size}: rows whose columns are too few are skipped"
                    for i, v in Array.indexed r.Correlations.[k] do
                        if not (Double.IsNaN v) then Expect.floatClose { absolute = 1e-9; relative = 1e-9 } v 1.0 $"{size}, row {i}"
                    Expect.isLessThan r.Undefined.[k] (rowCount - skipped) $"{size}: some correlation defined"
            // the same space with scores unrelated to the model is not rewarded
            let shuffled = tensor(array2D (contributions has |> Array.map Array.rev))
            let r = SensitivityN.Correlate(space (Some has), shuffled, tensor(classes), [| SubsetSize.Count 1 :> SubsetSize |], 12, 3L, 24)
            Expect.isLessThan r.MeanCorrelation.[0] 0.9 "reversed scores do not correlate"
        }

        test "negative perturbation: removing the least important columns by exact contribution never flips a row whose target logit is positive; the reversed ranking does" {
            use scope = NewDisposeScope()
            let c = contributions has
            let fractions = [| 0.2; 0.4; 0.6; 0.8 |]
            let positive = c |> Array.map Array.sum |> Array.map (fun l -> l > 0.0)
            Expect.isGreaterThan (positive |> Array.filter id |> Array.length) 2 "rows to check"
            let predictions (scores: float[][]) =
                use g = new Generator(9UL, CPU)
                let p = NegativePerturbation.MaskedPredictions(space (Some has), tensor(array2D scores), fractions, g, 5)
                Expect.sequenceEqual p.shape [| int64 fractions.Length; int64 rowCount |] "[F, B]"
                Array.init fractions.Length (fun f -> Array.init rowCount (fun i -> p.[int64 f, int64 i].item<int64>()))
            let exact = predictions c
            for f in 0 .. fractions.Length - 1 do
                for i in 0 .. rowCount - 1 do
                    if positive.[i] then Expect.equal exact.[f].[i] classes.[i] $"fraction {fractions.[f]}, row {i}: the top columns kept sum above 0"
            let reversed = predictions (c |> Array.map (Array.map (fun v -> -v)))
            let flips = [ for f in 0 .. fractions.Length - 1 do for i in 0 .. rowCount - 1 do if positive.[i] && reversed.[f].[i] <> classes.[i] then 1 ] |> List.length
            Expect.isGreaterThan flips 0 "removing the most important columns first flips some predictions"
        }

        // The shipped frame space (audio): framed signals [B, F, 1, w], a linear model whose logit is a weighted sum of
        // each frame's samples, and gradient x input maps, so a frame's exact contribution is its summed map.
        test "FrameSpace: frames are silenced whole; an additive model over frames gives the oracle curves and Sensitivity-N 1" {
            use scope = NewDisposeScope()
            let frames, width, b = 6L, 5L, 9L
            use g = new Generator(31UL, CPU)
            let x = randn([| b; frames; 1L; width |], dtype = ScalarType.Float64, generator = g)
            let frameWeights = tensor(weights)                                                  // one weight per frame
            let row = frameWeights.view(frames, 1L).expand(frames, width).reshape(1L, -1L)
            let linear = nn.Linear(frames * width, 2L, hasBias = false, dtype = ScalarType.Float64)
            use noGrad = no_grad()
            linear.weight.copy_(cat([| row; row.neg() |], 0L)) |> ignore
            let model = nn.Sequential(nn.Flatten(), linear)
            let targets = tensor(Array.init (int b) (fun i -> int64 (i % 2)))
            let signs = tensor(Array.init (int b) (fun i -> sign (int64 (i % 2)))).view(b, 1L, 1L, 1L)     // +1 for class 0, -1 for class 1
            let maps = x * frameWeights.view(1L, frames, 1L, 1L) * signs                          // gradient x input of the target's logit
            let space = FrameSpace(model, x, 0.0, CPU) :> IFeatureSpace
            Expect.equal space.Substrate "silence" "a removed frame is silence"
            // a frame is silenced whole, the others untouched
            let mask = zeros([| 1L; 1L; frames |], dtype = ScalarType.Bool)
            mask.[0L, 0L, 2L] <- tensor(true)
            let perturbed = space.Perturb(mask).view(b, frames, 1L, width)
            Expect.isTrue (perturbed.select(1L, 2L).eq(Scalar.op_Implicit 0.0).all().item<bool>()) "frame 2 silent"
            let others = tensor([| 0L; 1L; 3L; 4L; 5L |])
            Expect.isTrue (perturbed.index_select(1L, others).eq(x.index_select(1L, others)).all().item<bool>()) "the other frames as they were"
            let c = space.Scores(maps)
            let contributions = Array.init (int b) (fun i -> Array.init (int frames) (fun f -> c.[int64 i, int64 f].item<float>()))
            use tieBreak = new Generator(5UL, CPU)
            let r = InsertionDeletion.Play(space, maps, targets, StepSchedule.FeaturesPerStep(1L), tieBreak, 7)
            let all = Array.create (int frames) true
            let expected game = Array.init (int b) (fun i -> Array.init (int frames + 1) (fun count -> oracle game contributions.[i] all count))
            closeCurves r.Deletion.Curves (expected PerturbationGame.Deletion) "frames, deletion"
            closeCurves r.Insertion.Curves (expected PerturbationGame.Insertion) "frames, insertion"
            let sizes: SubsetSize[] = [| SubsetSize.Count 1; SubsetSize.Count 3 |]
            let sn = SensitivityN.Correlate(space, maps, targets, sizes, 12, 3L, 24)
            for k in 0 .. sizes.Length - 1 do
                for i, v in Array.indexed sn.Correlations.[k] do
                    Expect.floatClose { absolute = 1e-9; relative = 1e-9 } v 1.0 $"{sizes.[k]}, input {i}"
        }

        test "a mask or a map of the wrong shape is an ArgumentException" {
            use scope = NewDisposeScope()
            let s = space None
            Expect.throwsT<ArgumentException> (fun () -> s.Perturb(zeros([| 2L; 1L; 4L |], dtype = ScalarType.Bool)) |> ignore) "wrong mask"
            Expect.throwsT<ArgumentException> (fun () -> InsertionDeletion.Play(s, zeros(3L, 3L), tensor(classes), StepSchedule.FeaturesPerStep(1L), new Generator(1UL, CPU)) |> ignore) "wrong maps"
        }
    ]
