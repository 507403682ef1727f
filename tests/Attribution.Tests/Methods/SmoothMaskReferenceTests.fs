/// The smooth max mask computed by SmoothMask (unfold of the padded grid times a weight table) against a direct loop over
/// every canvas pixel and its (2r + 1)^2 grid neighbours, as the formula reads (Fong et al. 2019, Sec. 3.3; TorchRay's geometry).
module SmoothMaskReferenceTests

open System
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods

/// m(u) = sum_k v_k softmax(20 v)_k with v_k = k(|u - c_k| / sigma) m_bar_k over the grid points c_k around u (0 outside
/// the grid), clamped to [0, 1]; grid point (gy, gx) at margin + step * g on the canvas, margin = sigma.
let private reference (p: float[,,]) (step: int) (sigma: float) (gridH: int) (gridW: int) (outH: int) (outW: int) =
    let padding = 1 + int (ceil (2.0 * sigma / float step))
    let radius = 1 + int (ceil (sigma / float step))
    let side = 2 * radius + 1
    let b = Array3D.length1 p
    Array3D.init b outH outW (fun n uy ux ->
        let v =
            [| for ky in 0 .. side - 1 do
                 for kx in 0 .. side - 1 do
                     let gy, gx = uy / step + ky - padding, ux / step + kx - padding
                     let dy, dx = float uy - (sigma + float (step * gy)), float ux - (sigma + float (step * gx))
                     let flat = max (sqrt (dy * dy + dx * dx) / sigma - 0.5) 0.0
                     let inside = gy >= 0 && gy < gridH && gx >= 0 && gx < gridW
                     yield exp (-2.0 * flat * flat) * (if inside then p.[n, gy, gx] else 0.0) |]
        let top = Array.max v
        let e = v |> Array.map (fun x -> exp (20.0 * (x - top)))
        let total = Array.sum e
        let m = Array.fold2 (fun acc x w -> acc + x * w / total) 0.0 v e
        min 1.0 (max 0.0 m))

[<Tests>]
let tests =
    testList "extremal_perturbation smooth mask reference" [
        for (h, w, step, sigma) in [ (9, 9, 1, 2.0); (10, 7, 2, 2.5); (12, 11, 3, 4.1); (28, 28, 1, 2.625); (20, 20, 2, 5.25) ] do
            test $"{h}x{w}, step {step}, sigma {sigma}: the canvas equals the direct formula to 1e-6" {
                use scope = NewDisposeScope()
                use generator = new SmoothMask(int64 h, int64 w, step, sigma, CPU, ScalarType.Float64)
                use g = new Generator(11UL, CPU)
                let gh, gw = int generator.GridHeight, int generator.GridWidth
                let p = rand([| 2L; 1L; int64 gh; int64 gw |], generator = g, dtype = ScalarType.Float64)
                let canvas = generator.GenerateWithMargin(p)
                let oh, ow = int generator.PaddedHeight, int generator.PaddedWidth
                let values = p.data<float>().ToArray()
                let grid = Array3D.init 2 gh gw (fun n y x -> values.[(n * gh + y) * gw + x])
                let expected = reference grid step sigma gh gw oh ow
                let got = canvas.data<float>().ToArray()
                Expect.sequenceEqual canvas.shape [| 2L; 1L; int64 oh; int64 ow |] "canvas shape"
                let worst = Seq.max (seq { for n in 0 .. 1 do for y in 0 .. oh - 1 do for x in 0 .. ow - 1 -> abs (got.[(n * oh + y) * ow + x] - expected.[n, y, x]) })
                Expect.isLessThan worst 1e-6 "largest difference from the direct formula"
            }
    ]
