/// The two-word experiment's mass fractions and the waveform heatmap.
module TwoWordAttributionTests

open System
open System.IO
open Expecto
open SkiaSharp
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators
open Attribution.Data.Audio
open Attribution.Methods
open Attribution.Metrics
open Attribution.Rendering
open TestModels

let private logit = ExplainOptions(Output = OutputFunction.Logit)

[<Tests>]
let tests =
    testList "two-word attribution" [
        test "MassBefore on a constructed map: |1| x 5 before the boundary, |-3| x 5 after -> 5 / 20; an all-zero map -> 0.5" {
            use scope = NewDisposeScope()
            let row0 = Array.append (Array.create 5 1.0f) (Array.create 5 -3.0f)
            let maps = tensor(Array.append row0 (Array.zeroCreate 10)).view(2L, 1L, 10L)
            let f = TwoWordAttribution.MassBefore(maps, 5L)
            Expect.floatClose Accuracy.high f.[0] 0.25 "5 / (5 + 15)"
            Expect.floatClose Accuracy.high f.[1] 0.5 "undefined -> chance"
            Expect.floatClose Accuracy.high (TwoWordAttribution.MassBefore(maps, 7L)).[0] (11.0 / 20.0) "boundary at 7: 5 + 2 x 3 of 20"
        }

        test "a model whose class 0 reads only the first half and class 1 only the second: saliency puts all mass on the right word" {
            use scope = NewDisposeScope()
            let t = 8
            let w = Array2D.init 2 (2 * t) (fun k i -> if (k = 0) = (i < t) then float32 (i + 1) else 0.0f)
            let model = new LinearNet(w)
            use g = new Generator(3UL, CPU)
            let x = randn([| 3L; 1L; int64 (2 * t) |], generator = g)
            use result = TwoWordAttribution.Explain(model, Presets.Saliency(), x, int64 t, 0L, 1L, logit)
            Expect.equal result.FirstMaps.shape x.shape "maps shaped like the utterances"
            for f in result.FirstOnFirstWord do Expect.floatClose Accuracy.high f 1.0 "class 0 on the first word"
            for f in result.SecondOnSecondWord do Expect.floatClose Accuracy.high f 1.0 "class 1 on the second word"
            use swapped = TwoWordAttribution.Explain(model, Presets.Saliency(), x, int64 t, 1L, 0L, logit)
            for f in swapped.FirstOnFirstWord do Expect.floatClose Accuracy.high f 0.0 "class 1 has nothing on the first word"
        }

        test "a view of the utterances (frames [B, T/F, 1, F]) is explained as given; its elements in order are the samples, so the shares equal the waveform's" {
            use scope = NewDisposeScope()
            let t = 8
            // class 0 reads samples 0..5 (the first word ends at 8), class 1 samples 6..15: each map has mass on both words
            let w = Array2D.init 2 (2 * t) (fun k i -> if (k = 0) = (i < 6) then float32 (i + 1) else 0.0f)
            let model = new LinearNet(w)
            use g = new Generator(5UL, CPU)
            let x = randn([| 3L; 1L; int64 (2 * t) |], generator = g)
            use waveform = TwoWordAttribution.Explain(model, Presets.GradientXInput(), x, int64 t, 0L, 1L, logit)
            use frames = TwoWordAttribution.Explain(model, Presets.GradientXInput(), x.reshape(3L, 4L, 1L, 4L), int64 t, 0L, 1L, logit)
            Expect.sequenceEqual frames.FirstMaps.shape [| 3L; 4L; 1L; 4L |] "maps shaped like the view"
            Expect.sequenceEqual frames.FirstOnFirstWord waveform.FirstOnFirstWord "class 0: the same shares"
            Expect.sequenceEqual frames.SecondOnSecondWord waveform.SecondOnSecondWord "class 1: the same shares"
            // class 1's weights on the first word are samples 6 and 7 only: a share strictly between 0 and 1
            for f in frames.SecondOnSecondWord do Expect.isTrue (f > 0.0 && f < 1.0) $"class 1 on its word: {f}"
            Expect.throwsT<ArgumentException> (fun () -> TwoWordAttribution.Explain(model, Presets.Saliency(), x.reshape(3L, 4L, 1L, 4L), 16L, 0L, 1L, logit) |> ignore) "the boundary inside the utterance"
        }

        test "BothInTopTwo: per utterance, whether both classes are among the two largest logits" {
            use scope = NewDisposeScope()
            // logits = x itself (3 classes): [3, 2, 1] has classes 0 and 1 on top; [3, 1, 2] has 0 and 2; [1, 2, 3] has 1 and 2
            let model = new LinearNet(array2D [ [ 1.0f; 0.0f; 0.0f ]; [ 0.0f; 1.0f; 0.0f ]; [ 0.0f; 0.0f; 1.0f ] ])
            let x = tensor([| 3.0f; 2.0f; 1.0f; 3.0f; 1.0f; 2.0f; 1.0f; 2.0f; 3.0f |]).view(3L, 1L, 1L, 3L)
            Expect.sequenceEqual (TwoWordAttribution.BothInTopTwo(model, x, 0L, 1L, CPU)) [| true; false; false |] "classes 0 and 1"
            Expect.sequenceEqual (TwoWordAttribution.BothInTopTwo(model, x, 2L, 1L, CPU)) [| false; false; true |] "classes 2 and 1"
        }

        test "Pairs: [n, 1, 2T], a clip of the first class followed by a clip of the second" {
            use scope = NewDisposeScope()
            // clip j is constant j + 1; labels alternate 0, 1
            let samples = Array.init (6 * 4) (fun i -> float32 (i / 4 + 1))
            use data = AudioDataset.FromArrays(samples, 4, [| 0L; 1L; 0L; 1L; 0L; 1L |], [| "right"; "cat" |], 16000, Array.create 6 "s")
            let pairs = TwoWordAttribution.Pairs(data, 0, 1, 5, 11L)
            Expect.equal pairs.shape [| 5L; 1L; 8L |] "shape"
            for i in 0L .. 4L do
                let first = pairs[i, 0L, 0L].ToSingle()
                let second = pairs[i, 0L, 4L].ToSingle()
                Expect.isTrue (first = 1.0f || first = 3.0f || first = 5.0f) $"first word from class 0 (clip {first})"
                Expect.isTrue (second = 2.0f || second = 4.0f || second = 6.0f) $"second word from class 1 (clip {second})"
        }

        test "waveform heatmap: a PNG of the stated size; zero attribution is white, the largest is dark red, in both views" {
            let dir = TestFiles.freshDir "waveform"
            let n = 1000
            let samples = Array.init n (fun i -> float32 (0.5 * sin (float i / 10.0)))
            let attribution = Array.init n (fun i -> if i < n / 2 then 0.0f else 1.0f)
            let rows = [| WaveformRow("right + cat", samples, attribution, Nullable 500L); WaveformRow("second", samples, attribution) |]
            for view in [ HeatmapView.Absolute; HeatmapView.Signed ] do
                let path = Path.Combine(dir, $"{view}.png")
                WaveformHeatmap.Render(path, rows, view, width = 400, rowHeight = 80)
                use bitmap = SKBitmap.Decode(path)
                Expect.equal (bitmap.Width, bitmap.Height) (8 + 150 + 400 + 8, 8 + 2 * 80 + 6 + 46 + 8) "size"
                // 3 pixels below the row's top edge, far from the waveform (amplitude 0.5 of the half-height 38 px)
                let left = bitmap.GetPixel(8 + 150 + 50, 8 + 3)
                let right = bitmap.GetPixel(8 + 150 + 350, 8 + 3)
                Expect.equal left SKColors.White $"{view}: zero attribution is white"
                Expect.equal right Colormaps.SignedPositive $"{view}: top attribution is dark red"
        }
    ]
