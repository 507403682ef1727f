/// A covariance model stored as tensors and metadata (StoredCovarianceModel) and restored is the same model: it draws
/// the same noise and applies the same products bit for bit, for every structure, through a safetensors file.
module StoredCovarianceModelTests

open System.IO
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Models
open Attribution.Sampling

let private structures : CovarianceStructure list =
    [ CovarianceStructure.SharedAcrossChannels(); CovarianceStructure.PerChannel(); CovarianceStructure.Full()
      CovarianceStructure.LowRankPlusDiagonal(4) ]

let private bitEqual (a: Tensor) (b: Tensor) =
    a.dtype = b.dtype && a.shape = b.shape && a.eq(b).all().item<bool>()

/// Through a file, as the cache keeps it: the tensors and metadata written, read back, restored.
let private roundTrip (model: ICovarianceModel) =
    let path = Path.Combine(Path.GetTempPath(), $"stored-covariance-{System.Guid.NewGuid():N}.safetensors")
    try
        let struct (tensors, metadata) = StoredCovarianceModel.ToParts(model, "test estimator")
        Safetensors.Save(path, tensors, metadata)
        for t in tensors.Values do t.Dispose()
        let stored = Safetensors.Load path
        let metadataRead = Safetensors.ReadMetadata path
        let restored = StoredCovarianceModel.Restore(stored, metadataRead, CPU)
        for t in stored.Values do t.Dispose()   // the restored model keeps its own handles
        restored, metadataRead
    finally File.Delete path

[<Tests>]
let tests =
    testList "samplers/stored covariance models" [
        test "every structure, estimated from images, restores to a model that samples and applies bit for bit the same" {
            use scope = NewDisposeScope()
            use g = new Generator(11UL, CPU)
            let classes = 3
            let images = rand([| 30L; 2L; 3L; 3L |], generator = g)
            let labels = arange(30L).remainder(Scalar.op_Implicit (int64 classes))
            for structure in structures do
                use estimated = CovarianceModels.Estimate(images, labels, classes, structure, 1e-5, CPU)
                let restored, metadata = roundTrip estimated
                use restored = restored
                Expect.equal restored.Structure estimated.Structure $"{structure.Name}: structure"
                Expect.equal (List.ofSeq restored.Jitters) (List.ofSeq estimated.Jitters) $"{structure.Name}: jitters"
                Expect.equal (restored.Channels, restored.Height, restored.Width, restored.Classes) (2L, 3L, 3L, 3L) $"{structure.Name}: shape"
                Expect.equal metadata.["estimator"] "test estimator" $"{structure.Name}: estimator"
                for k in 0L .. 2L do
                    let eps = randn([| 5L; estimated.NoiseDimension |], generator = g)
                    Expect.isTrue (bitEqual (restored.Sample(k, eps)) (estimated.Sample(k, eps))) $"{structure.Name}, class {k}: samples"
                    let grads = randn([| 4L; estimated.Features |], generator = g)
                    Expect.isTrue (bitEqual (restored.Apply(k, grads)) (estimated.Apply(k, grads))) $"{structure.Name}, class {k}: Sigma g"
                    Expect.isTrue (bitEqual (restored.Dense k) (estimated.Dense k)) $"{structure.Name}, class {k}: dense"
        }

        test "a stored model whose tensor has the wrong shape is refused, naming the tensor" {
            use scope = NewDisposeScope()
            let images = rand([| 12L; 1L; 2L; 2L |])
            let labels = arange(12L).remainder(Scalar.op_Implicit 2L)
            use model = CovarianceModels.Estimate(images, labels, 2, CovarianceStructure.LowRankPlusDiagonal(2), 1e-5, CPU)
            let struct (tensors, metadata) = StoredCovarianceModel.ToParts(model, "test")
            metadata.["rank"] <- "3"
            metadata.["structure"] <- "low_rank_plus_diagonal_3"
            let message = Expect.throwsC (fun () -> StoredCovarianceModel.Restore(tensors, metadata, CPU) |> ignore) (fun e -> e.Message)
            Expect.stringContains message "'u'" "names the tensor"
        }
    ]
