/// Covariance structures (shared across channels, per channel, full, low rank plus diagonal): each samples and
/// applies the covariance it claims, keeps what it claims of the full matrix, and costs the memory it claims.
module CovarianceStructureTests

open Expecto
open FsCheck
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Sampling
open TestModels

let private config = { FsCheckConfig.defaultConfig with maxTest = 3 }

let private structures : CovarianceStructure list =
    [ CovarianceStructure.SharedAcrossChannels(); CovarianceStructure.PerChannel(); CovarianceStructure.Full()
      CovarianceStructure.LowRankPlusDiagonal(3) ]

/// An image-like covariance over [C, H, W]: a squared-exponential kernel over pixel positions (length 1.5),
/// channels correlated 0.8, plus 0.05 I. Its spectrum decays, as natural images' does.
let smoothCovariance (c: int) (h: int) (w: int) =
    let p = h * w
    let pixels = Array2D.init p p (fun i j ->
        let di, dj = float (i / w - j / w), float (i % w - j % w)
        exp (-(di * di + dj * dj) / (2.0 * 1.5 * 1.5)))
    let channels = Array2D.init c c (fun a b -> if a = b then 1.0 else 0.8)
    let kernel = tensor(channels).kron(tensor(pixels))
    kernel + eye(int64 (c * p), dtype = ScalarType.Float64) * 0.05

/// The diagonal blocks Sigma[c, :, c, :] of a [C P, C P] matrix, [C, P, P].
let private diagonalBlocks (sigma: Tensor) (c: int64) (p: int64) =
    sigma.view(c, p, c, p).diagonal(0L, 0L, 2L).permute(2L, 0L, 1L)

[<Tests>]
let tests =
    testList "samplers/covariance structures" [
        testPropertyWithConfig config "every structure's noise has the covariance it claims (5 standard errors) and Apply is Sigma g" <| fun (seed: int) ->
            use scope = NewDisposeScope()
            let c, h, w = 2L, 1L, 3L
            let d = c * h * w
            let full = randomCovariance seed (int d)
            use g = new Generator(uint64 (abs seed + 5), CPU)
            for structure in structures do
                use model = CovarianceModels.FromFull(full, c, h, w, structure)
                let sigma = model.Dense(0L)
                let n = 10000
                let eps = randn([| int64 n; model.NoiseDimension |], dtype = ScalarType.Float64, generator = g)
                let z = model.Sample(0L, eps)
                let empirical = z.t().matmul(z) / float n        // the mean is 0 by construction
                let se = ((sigma.diagonal().outer(sigma.diagonal()) + sigma.square()) / float n).sqrt()
                let worst = ((empirical - sigma) / se).abs().max().item<float>()
                Expect.isLessThan worst 5.0 $"{structure.Name}: sample covariance"
                let grads = randn([| 7L; d |], dtype = ScalarType.Float64, generator = g)
                Expect.isTrue (model.Apply(0L, grads).allclose(grads.matmul(sigma), 1e-4, 1e-6)) $"{structure.Name}: Apply = Sigma g"
                Expect.equal model.FloatsPerClass (structure.Floats(c, h, w)) $"{structure.Name}: floats"

        test "full is the matrix itself, per channel its diagonal blocks, shared their average; nothing between channels" {
            use scope = NewDisposeScope()
            let c, h, w = 3L, 2L, 2L
            let p = h * w
            let sigma = smoothCovariance 3 2 2
            let dense (s: CovarianceStructure) =
                use m = CovarianceModels.FromFull(sigma, c, h, w, s)
                m.Dense(0L)
            Expect.isTrue ((dense (CovarianceStructure.Full())).allclose(sigma, 1e-5, 1e-6)) "full"
            let blocks = diagonalBlocks sigma c p
            let perChannel = dense (CovarianceStructure.PerChannel())
            Expect.isTrue ((diagonalBlocks perChannel c p).allclose(blocks, 1e-5, 1e-6)) "per channel keeps each diagonal block"
            let shared = dense (CovarianceStructure.SharedAcrossChannels())
            let average = blocks.mean([| 0L |]).unsqueeze(0).expand(c, p, p)
            Expect.isTrue ((diagonalBlocks shared c p).allclose(average, 1e-5, 1e-6)) "shared keeps the average block"
            for m in [ perChannel; shared ] do
                let between = m.view(c, p, c, p).permute(0L, 2L, 1L, 3L).reshape(c * c, p, p).index_select(0L, tensor([| 1L; 2L; 3L; 5L; 6L; 7L |]))
                Expect.isTrue (between.eq(Scalar.op_Implicit 0.0).all().item<bool>()) "no covariance between channels"
        }

        test "the shared model of a ClassCovariance is its covariance in every channel (the existing sampler's behaviour)" {
            use scope = NewDisposeScope()
            let sigma = randomCovariance 3 4
            use cc = ClassCovariance.FromCovariances(sigma.unsqueeze(0), 2L, 2L, 2L)
            use model = CovarianceModels.FromClassCovariance(cc)
            let expected = block_diag([| cc.Covariances.[0L]; cc.Covariances.[0L] |]).``to``(ScalarType.Float64)
            Expect.isTrue (model.Dense(0L).allclose(expected, 1e-5, 1e-6)) "block diag(Sigma, Sigma)"
        }

        test "low rank plus diagonal: the error against the full matrix falls with the rank and is 0 at full rank; memory is r D + D floats" {
            use scope = NewDisposeScope()
            let c, h, w = 2L, 4L, 4L
            let d = c * h * w
            let sigma = smoothCovariance 2 4 4
            let ranks = [ 1; 2; 4; 8; 16; 32 ]
            let rows = CovarianceFidelity.Compare(sigma, c, h, w, ranks |> List.map (fun r -> CovarianceStructure.LowRankPlusDiagonal(r) :> CovarianceStructure))
            let errors = rows |> Seq.map (fun r -> r.RelativeFrobeniusError) |> List.ofSeq
            for (a, b) in List.pairwise errors do Expect.isLessThan b a $"the error falls with the rank: {errors}"
            Expect.isLessThan (List.last errors) 1e-5 "0 at full rank"
            for (r, row) in Seq.zip ranks rows do
                Expect.equal row.Bytes (4L * (int64 r * d + d)) $"rank {r}: 4 (r D + D) bytes"
                Expect.equal row.FullBytes (4L * d * d) "full: 4 D^2 bytes"
        }

        test "per channel is at least as close to the full matrix as shared, and full is exact" {
            use scope = NewDisposeScope()
            let rows =
                CovarianceFidelity.Compare(smoothCovariance 3 3 3, 3L, 3L, 3L,
                    [ CovarianceStructure.SharedAcrossChannels(); CovarianceStructure.PerChannel(); CovarianceStructure.Full() ])
                |> Seq.map (fun r -> r.RelativeFrobeniusError) |> Array.ofSeq
            Expect.isLessThanOrEqual rows.[1] rows.[0] "per channel <= shared"
            Expect.isLessThan rows.[2] 1e-5 "full"
            Expect.isGreaterThan rows.[1] 0.1 "dropping the channel correlation 0.8 costs something"
        }

        test "bytes for a 224x224 RGB input: full 90.7 GB, shared 10.1 GB, per channel 30.2 GB, rank 100 + diagonal 60.8 MB" {
            let bytes (s: CovarianceStructure) = s.Bytes(3L, 224L, 224L)
            Expect.equal (bytes (CovarianceStructure.Full())) (4L * 150528L * 150528L) "full"
            Expect.equal (bytes (CovarianceStructure.SharedAcrossChannels())) (4L * 50176L * 50176L) "shared"
            Expect.equal (bytes (CovarianceStructure.PerChannel())) (3L * 4L * 50176L * 50176L) "per channel"
            Expect.equal (bytes (CovarianceStructure.LowRankPlusDiagonal(100))) (4L * 101L * 150528L) "low rank"
        }

        test "covariance Gaussian with low rank plus diagonal: C g = s Sigma g, and estimating from images gives the same structure" {
            use scope = NewDisposeScope()
            use g = new Generator(13UL, CPU)
            let images = rand([| 60L; 2L; 3L; 3L |], generator = g)
            let labels = tensor([| for i in 0 .. 59 -> int64 (i % 2) |])
            use model = CovarianceModels.Estimate(images, labels, 2, CovarianceStructure.LowRankPlusDiagonal(4))
            let sampler = CovarianceGaussian(model, 0.5)
            let grads = randn([| 4L; 2L; 3L; 3L |], generator = g)
            let targets = tensor([| 0L; 1L; 1L; 0L |])
            let applied = sampler.ApplyCovariance(grads, targets).reshape(4, 18)
            for i in 0L .. 3L do
                let k = targets.[i].item<int64>()
                let expected = grads.[i].reshape(1, 18).``to``(ScalarType.Float64).matmul(model.Dense(k)) * 0.5
                Expect.isTrue (applied.[i].``to``(ScalarType.Float64).allclose(expected.squeeze(0), 1e-4, 1e-6)) $"row {i}"
            use set = sampler.Draw(images.narrow(0, 0, 1), 1L, 8, g)
            Expect.sequenceEqual set.Points.shape [| 8L; 2L; 3L; 3L |] "points shaped like the input"
            use e = Presets.FunctionalInformation(sampler, 8).Explain(tinyNet 2 18 6 2, images.narrow(0, 0, 2), tensor([| 0L; 1L |]), ExplainOptions())
            Expect.isTrue (e.Maps.isfinite().all().item<bool>()) "FI runs with the structure"
        }

        test "estimated structures agree with the full estimate where they should" {
            use scope = NewDisposeScope()
            use g = new Generator(17UL, CPU)
            let images = rand([| 200L; 2L; 2L; 2L |], generator = g)
            let labels = zeros(200L, dtype = ScalarType.Int64)
            use full = CovarianceModels.Estimate(images, labels, 1, CovarianceStructure.Full(), 0.0)
            use perChannel = CovarianceModels.Estimate(images, labels, 1, CovarianceStructure.PerChannel(), 0.0)
            use lowRank = CovarianceModels.Estimate(images, labels, 1, CovarianceStructure.LowRankPlusDiagonal(8), 0.0)
            let sigma = full.Dense(0L)
            Expect.isTrue ((diagonalBlocks (perChannel.Dense(0L)) 2L 4L).allclose(diagonalBlocks sigma 2L 4L, 1e-4, 1e-6)) "per channel = diagonal blocks of the full estimate"
            Expect.isTrue (lowRank.Dense(0L).allclose(sigma, 1e-4, 1e-6)) "full-rank low rank = full"
        }

        test "low rank from images above 4096 features (thin SVD): on its retained directions it is the data's covariance, its values are the top eigenvalues, and every feature keeps its variance" {
            use scope = NewDisposeScope()
            use g = new Generator(23UL, CPU)
            // 3 x 40 x 40 = 4800 features, 60 images: the estimator must take the thin SVD, never a 4800 x 4800 matrix.
            let n, c, h, w, rank = 60L, 3L, 40L, 40L, 6
            let smooth = nn.functional.avg_pool2d(rand([| n; c; h + 4L; w + 4L |], generator = g), 5L, stride = 1L)
            let images = smooth.``to``(ScalarType.Float32)
            let labels = zeros(n, dtype = ScalarType.Int64)
            use model = CovarianceModels.Estimate(images, labels, 1, CovarianceStructure.LowRankPlusDiagonal(rank), 0.0) :?> LowRankPlusDiagonalCovariance
            let x = images.reshape(n, -1L).``to``(ScalarType.Float64)
            let centred = x - x.mean([| 0L |], keepdim = true)
            let u = model.Factor(0L).``to``(ScalarType.Float64)
            let lambda = u.square().sum([| 0L |])
            let v = u / lambda.sqrt()
            // V^T Sigma V from the data without forming Sigma: (X V)^T (X V) / (n - 1)
            let xv = centred.matmul(v)
            let projected = xv.t().matmul(xv) / float (n - 1L)
            let scale = lambda.max().item<float>()
            Expect.isTrue (projected.allclose(lambda.diag(), 1e-4, 1e-4 * scale)) "V^T Sigma V = diag(lambda) on the retained directions"
            Expect.isTrue (v.t().matmul(v).allclose(eye(int64 rank, dtype = ScalarType.Float64), 1e-4, 1e-4)) "the directions are orthonormal"
            // Sigma's nonzero eigenvalues are those of the n x n Gram matrix X X^T / (n - 1)
            let gram = centred.matmul(centred.t()) / float (n - 1L)
            let top = linalg.eigvalsh(gram).flip([| 0L |]).narrow(0L, 0L, int64 rank)
            Expect.isTrue (lambda.allclose(top, 1e-4, 1e-4 * scale)) $"lambda are the top {rank} eigenvalues"
            let variances = centred.square().sum([| 0L |]) / float (n - 1L)
            let kept = u.square().sum([| 1L |]) + model.Diagonal(0L).``to``(ScalarType.Float64)
            Expect.isTrue (kept.allclose(variances, 1e-4, 1e-6 * variances.max().item<float>())) "diag(U U^T) + d = diag(Sigma)"
        }
    ]
