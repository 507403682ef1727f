/// The plan's covariance step: the class covariances (shared across channels) of the training inputs, estimated
/// once and kept in the cache beside the model (`covariances/HASH.safetensors`), so that a re-run whose every
/// other step is cached does not spend seconds re-estimating them, and so that a user can open what was sampled
/// from: `covariance` (Sigma_k + j_k I, [K, D, D]), `factor` (its Cholesky factor), `jitter` [K] and `count` [K].
/// The other structures (per channel, full, low rank) are steps of their own, stored the same way in the engine's
/// stored form (StoredCovarianceModel: `factor` and `covariance` per block, or `u` and `diagonal`; `jitter`).
module Experiments.CovarianceSteps

open System.Collections.Generic
open TorchSharp
open Attribution.Models
open Attribution.Sampling
open Experiments.Plan

/// The cache file of a covariance step.
let file (step: Step) = Artefacts.path "covariances" step.Hash ".safetensors"

let private save (path: string) (c: ClassCovariance) =
    use scope = torch.NewDisposeScope()
    let tensors = Dictionary<string, torch.Tensor>()
    tensors.["covariance"] <- c.Covariances.cpu()
    tensors.["factor"] <- c.Factors.cpu()
    tensors.["jitter"] <- torch.tensor(c.Jitters |> Array.ofSeq, dtype = torch.float64)
    tensors.["count"] <- torch.tensor(c.Counts |> Seq.map int64 |> Array.ofSeq)
    let metadata =
        [ "estimator", "unbiased covariance of the pixels per class, every channel of every training image one sample of an H*W vector (FI App. B), plus jitter * mean(diag) I, the jitter raised 10x until Cholesky succeeds"
          "structure", "shared_across_channels"
          "channels", string c.Channels
          "height", string c.Height
          "width", string c.Width ]
    Safetensors.Save(path, tensors, readOnlyDict metadata)

let private tryLoad (path: string) (device: torch.Device) =
    Artefacts.tryTensorsWithMetadata path
    |> Option.map (fun (struct (stored, metadata)) ->
        use scope = torch.NewDisposeScope()
        ClassCovariance.Restore(stored.["covariance"].``to``(device), stored.["factor"].``to``(device),
                                stored.["jitter"].data<float>().ToArray(), stored.["count"].data<int64>().ToArray() |> Array.map int,
                                int64 metadata.["channels"], int64 metadata.["height"], int64 metadata.["width"]))

/// A step's value from its cache file (`load`), or estimated by `estimate` and stored (`store`).
let private provideWith (step: Step) (load: string -> 'a option) (store: string -> 'a -> unit) (estimate: unit -> 'a) =
    let path = file step
    match load path with
    | Some value ->
        Progress.say $"{step.Name}: cached"
        value
    | None ->
        let value = estimate ()
        store path value
        value

/// The step's covariances from the cache, or estimated by `estimate` and stored.
let provide (step: Step) (device: torch.Device) (estimate: unit -> ClassCovariance) =
    provideWith step (fun path -> tryLoad path device) save estimate

/// The engine's structure of a spec's covariance layout (`rank` is read for low rank only).
let structureOf (layout: CovarianceLayout) (rank: int) : CovarianceStructure =
    match layout with
    | SharedAcrossChannels -> CovarianceStructure.SharedAcrossChannels()
    | PerChannel -> CovarianceStructure.PerChannel()
    | FullMatrix -> CovarianceStructure.Full()
    | LowRank -> CovarianceStructure.LowRankPlusDiagonal(rank)

/// How CovarianceModels.Estimate estimates a structure, in words, for the stored file's metadata.
let private estimatorOf (structure: CovarianceStructure) =
    let unbiased = "unbiased covariance per class of the C*H*W features of the training inputs"
    let cholesky = "its lower Cholesky factor (float32) after adding jitter * mean(diag) I, the jitter raised 10x until Cholesky succeeds; `covariance` is L L^T as the sampler holds it"
    match structure with
    | :? CovarianceStructure.PerChannel -> $"{unbiased}, kept as one H*W x H*W block per channel (nothing between channels); per block {cholesky}; a class's jitter is the largest of its channels'"
    | :? CovarianceStructure.Full -> $"{unbiased}, the whole D x D matrix; {cholesky}"
    | :? CovarianceStructure.LowRankPlusDiagonal as l ->
        $"{unbiased} as U U^T + diag(d): U the top {l.Rank} principal directions scaled by the square roots of their variances (plain PCA), d = diag(Sigma) - diag(U U^T) kept at least jitter * mean(diag), the recorded jitter"
    | other -> $"{unbiased}, structure {other.Name}"

let private saveStructured (path: string) (model: ICovarianceModel) =
    let struct (tensors, metadata) = StoredCovarianceModel.ToParts(model, estimatorOf model.Structure)
    try Safetensors.Save(path, tensors, metadata)
    finally for t in tensors.Values do t.Dispose()

let private tryLoadStructured (path: string) (device: torch.Device) =
    Artefacts.tryTensorsWithMetadata path
    |> Option.map (fun (struct (stored, metadata)) ->
        try StoredCovarianceModel.Restore(stored, metadata, device)
        finally for t in stored.Values do t.Dispose())

/// A structured covariance step's model from the cache, or estimated by `estimate` and stored.
let provideStructured (step: Step) (device: torch.Device) (estimate: unit -> ICovarianceModel) =
    provideWith step (fun path -> tryLoadStructured path device) saveStructured estimate
