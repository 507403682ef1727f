/// ROAR's removal step: which pixels a map sends to the fill value.
module RoarTests

open Expecto
open TorchSharp
open Experiments

[<Tests>]
let tests =
    testList "roar removal" [
        test "a perfect ranking removes exactly the top pixels; the reversed ranking removes the other end" {
            use scope = torch.NewDisposeScope()
            // One 1x4x4 input with values 1..16; the map ranks pixel i by its value (perfect) or by -value (reversed).
            let x = torch.arange(1.0, 17.0, dtype = torch.ScalarType.Float32).reshape(1L, 1L, 4L, 4L)
            let fill = torch.zeros(1L, 1L, 1L, 1L)
            let kept (t: torch.Tensor) = t.reshape(-1L).data<float32>().ToArray() |> Array.filter (fun v -> v <> 0.0f) |> Array.sort
            let perfect = Execute.removeMostImportant x x 0.25 fill 3L
            Expect.equal (kept perfect) [| 1.0f .. 12.0f |] "the 4 largest (13..16) removed"
            let reversed = Execute.removeMostImportant x (x.neg()) 0.25 fill 3L
            Expect.equal (kept reversed) [| 5.0f .. 16.0f |] "the 4 smallest (1..4) removed"
            Expect.equal (kept (Execute.removeMostImportant x x 0.0 fill 3L)) [| 1.0f .. 16.0f |] "fraction 0 removes nothing"
        }

        test "ties are broken by the seed, channels are summed, and the fill is per channel" {
            use scope = torch.NewDisposeScope()
            let x = torch.ones(2L, 2L, 3L, 3L)
            let flat = torch.zeros(2L, 2L, 3L, 3L)
            let fill = torch.tensor([| 5.0f; 7.0f |]).reshape(1L, 2L, 1L, 1L)
            let a = Execute.removeMostImportant x flat 0.5 fill 11L
            let b = Execute.removeMostImportant x flat 0.5 fill 11L
            Expect.sequenceEqual (a.reshape(-1L).data<float32>().ToArray()) (b.reshape(-1L).data<float32>().ToArray()) "same seed, same pixels"
            // round(0.5 * 9) = 4 pixels (the same in both channels) removed per input
            for i in 0L .. 1L do
                let c0 = a.[i, 0L].reshape(-1L).data<float32>().ToArray()
                let c1 = a.[i, 1L].reshape(-1L).data<float32>().ToArray()
                Expect.equal (c0 |> Array.filter ((=) 5.0f) |> Array.length) 4 "four pixels of channel 0 get its fill"
                Expect.equal (Array.map (fun v -> v = 5.0f) c0) (Array.map (fun v -> v = 7.0f) c1) "the same pixels in both channels"
            // A map whose channel sum ranks pixel 0 first removes pixel 0 even if one channel alone says otherwise.
            let map = torch.zeros(1L, 2L, 3L, 3L)
            map.[0L, 0L, 0L, 0L] <- torch.tensor(3.0f)
            map.[0L, 1L, 0L, 0L] <- torch.tensor(-1.0f)
            map.[0L, 1L, 2L, 2L] <- torch.tensor(1.5f)
            let one = Execute.removeMostImportant (x.narrow(0L, 0L, 1L)) map (1.0 / 9.0) fill 11L
            Expect.equal (one.[0L, 0L, 0L, 0L].item<float32>()) 5.0f "pixel (0, 0): channel sum 2 beats 1.5"
        }
    ]
