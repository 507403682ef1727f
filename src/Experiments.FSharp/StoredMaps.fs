/// A step's maps as the cache holds them: one sealed safetensors file, read a block of rows at a time, so that metrics
/// and reports over 50,000 explained inputs never hold a whole step's maps (30 GB of 224 x 224 colour maps) in memory.
namespace Experiments

open System
open TorchSharp
open Attribution.Models

/// The maps [N, ...] stored under "maps" in `File`, verified once (when the step stored or found them); reads are
/// slices of that file. Diagnostics (one value or a few per input) are small and travel in memory beside it.
type StoredMaps(file: string) =
    let count, rowShape =
        use reader = new SafetensorsRows(file)
        let shape = reader.Shape "maps"
        int shape.[0], shape.[1..]

    member _.File = file
    /// How many inputs' maps the file holds.
    member _.Count = count
    /// One input's map shape.
    member _.RowShape = Array.copy rowShape

    /// Maps of inputs first .. first + n - 1 (CPU); the caller owns them.
    member _.Rows(first: int, n: int) : torch.Tensor =
        use reader = new SafetensorsRows(file)
        reader.Read("maps", int64 first, int64 n)

    /// One input's map, without its batch dimension (CPU); the caller owns it.
    member this.Row(i: int) : torch.Tensor = use block = this.Rows(i, 1) in block.[0L].clone()

    /// Every map at once: for the few places that need the whole set (ROAR's test masks, explanation certainty's
    /// pooled estimator, a user's engine metric) and for tests. Holds N maps in memory.
    member this.All() : torch.Tensor = this.Rows(0, count)

    /// `f first count maps` for each block of `size` inputs in order, the block's maps disposed after it returns.
    member this.MapBlocks(size: int, f: int -> int -> torch.Tensor -> 'a) : 'a[] =
        [| for first, n in StoredMaps.Blocks count size ->
             use maps = this.Rows(first, n)
             f first n maps |]

    /// The blocks of `size` inputs (the last may be shorter) that cover the maps: (first, count) each.
    static member Blocks (total: int) (size: int) = InputRows.blocks total size
