/// Inputs of a data set read by position, a block at a time, rather than held whole: a run's explained inputs (and,
/// over a tensor it holds, ROAR's training subset). The data set behind them may be mapped from a decoded copy larger
/// than memory (DecodedImageFolder), so that a run holds only the blocks it works on.
module Experiments.InputRows

open TorchSharp

type private Tensor = torch.Tensor

/// `rows` of one split of a data set, as the methods see them, read through `read` (the domain's Inputs). Every
/// tensor it gives is a new one on the CPU, which the caller disposes.
type InputRows(read: int64[] -> Tensor, rows: int64[]) =
    let shape =
        lazy
            (if rows.Length = 0 then [| 0L |]
             else
                 use one = read [| rows.[0] |]
                 Array.append [| int64 rows.Length |] one.shape.[1..])

    /// How many inputs.
    member _.Count = rows.Length
    /// Their rows in the data set's split.
    member _.Rows = rows
    /// The shape the inputs would have as one tensor [Count, ...].
    member _.Shape : int64[] = shape.Value
    /// Inputs `first` .. `first + n - 1`.
    member _.Block(first: int, n: int) : Tensor = read rows.[first .. first + n - 1]
    /// The inputs at these positions, in this order.
    member _.At(positions: int64[]) : Tensor = read (positions |> Array.map (fun p -> rows.[int p]))
    /// Every input as one tensor: for what takes the whole set (a user's plain IMetric).
    member x.All() = x.Block(0, x.Count)

/// The blocks of `size` inputs (the last may be shorter) that cover `total`: (first, count) each.
let blocks (total: int) (size: int) =
    if size < 1 then invalidArg "size" $"a block holds at least one input; got {size}"
    [ for first in 0 .. size .. total - 1 -> first, min size (total - first) ]

/// The model's logits on every input (CPU), predicted a block of 1,024 at a time as the inputs are read.
let logits (model: torch.nn.Module<Tensor, Tensor>) (inputs: InputRows) (device: torch.Device) =
    let parts = [| for first, n in blocks inputs.Count 1024 -> (use x = inputs.Block(first, n) in Attribution.Models.Training.Logits(model, x, device)) |]
    let all = torch.cat(parts, 0L)
    for p in parts do p.Dispose()
    all

/// The rows of a tensor held in memory (its positions 0 .. N-1).
let ofTensor (inputs: Tensor) =
    InputRows((fun rows -> use index = torch.tensor(rows) in inputs.index_select(0L, index)), Array.init (int inputs.shape.[0]) int64)

/// The domain's inputs at `rows` of its training set (`train`) or test set.
let ofDomain (domain: Domain.Domain) (network: Domain.Network) (train: bool) (rows: int64[]) = InputRows(domain.Inputs network train, rows)
