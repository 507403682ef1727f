module TokenHeatmapTests

open System
open System.IO
open Expecto
open SkiaSharp
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators
open Attribution.Data
open Attribution.Rendering
open TestFiles

let private spam =
    TokenHighlight([| "free"; "<b>money</b>"; "&"; "\"now\""; "pad" |], [| 0.5f; 2.0f; 0.0f; -1.0f; -0.25f |], "spam", "spam", "FI (Sigma)")
let private ham =
    TokenHighlight([| "meeting"; "at"; "noon" |], [| -3.0f; 0.0f; 1.5f |], "ham", "spam <wrong>", "SmoothGrad")

/// The span elements of the page, in order: (style attribute, inner text).
let private spans (html: string) =
    Text.RegularExpressions.Regex.Matches(html, "<span style=\"([^\"]*)\" title=\"[^\"]*\">([^<]*)</span>")
    |> Seq.map (fun m -> m.Groups[1].Value, m.Groups[2].Value)
    |> Array.ofSeq

let private hex (c: SKColor) = $"#%02x{c.Red}%02x{c.Green}%02x{c.Blue}"

let private htmlTests =
    testList "TokenHeatmapHtml" [
        test "tokens, captions and title are HTML-escaped: markup in an e-mail shows as text" {
            let html = TokenHeatmapHtml.ToHtml("Spam <vs> ham & co", [ spam; ham ])
            Expect.stringContains html "&lt;b&gt;money&lt;/b&gt;" "tag in a token"
            Expect.stringContains html ">&amp;</span>" "ampersand token"
            Expect.stringContains html "&quot;now&quot;" "quotes"
            Expect.stringContains html "predicted spam &lt;wrong&gt;, SmoothGrad" "caption"
            Expect.stringContains html "<title>Spam &lt;vs&gt; ham &amp; co</title>" "title"
            Expect.isFalse (html.Contains "<b>money") "no raw tag from data"
            Expect.isFalse (html.Contains "<wrong>") "no raw tag in a caption"
        }

        test "one span per token, in order; the max |score| token of each text gets the colormap's end colour, zero is white" {
            let html = TokenHeatmapHtml.ToHtml("t", [ spam; ham ])
            let s = spans html
            Expect.equal s.Length 8 "5 + 3 tokens"
            Expect.equal (snd s[1]) "&lt;b&gt;money&lt;/b&gt;" "order kept"
            Expect.stringContains (fst s[1]) $"background-color: {hex Colormaps.SignedPositive}" "largest positive -> dark red"
            Expect.stringContains (fst s[2]) "background-color: #ffffff" "zero -> white"
            Expect.stringContains (fst s[3]) $"background-color: {hex (Colormaps.Diverging(-0.5f))}" "-1 of max 2 -> half-way blue"
            Expect.stringContains (fst s[5]) $"background-color: {hex Colormaps.SignedNegative}" "second text scaled on its own: -3 is its extreme"
            Expect.stringContains (fst s[7]) $"background-color: {hex (Colormaps.Diverging(0.5f))}" "1.5 of max 3"
            Expect.stringContains (fst s[1]) "color: #ffffff" "white ink on dark red"
            Expect.stringContains (fst s[2]) "color: #000000" "black ink on white"
        }

        test "the page states the normalisation and has a legend and a caption per text" {
            let html = TokenHeatmapHtml.ToHtml("t", [ spam; ham ])
            Expect.stringContains html "max |score| over the tokens of the same text" "normalisation"
            Expect.stringContains html "class=\"legend\"" "legend"
            Expect.equal (Text.RegularExpressions.Regex.Matches(html, "<figcaption>").Count) 2 "two captions"
            Expect.stringContains html "label spam, predicted spam, FI (Sigma) (max |score| 2)</figcaption>" "label, prediction, method, and the scale"
            Expect.stringContains html "SmoothGrad (max |score| 3)</figcaption>" "each text's own scale"
        }

        test "Render writes the file atomically (no temporary file left) and refuses non-finite scores" {
            let dir = freshDir "tokens"
            let path = Path.Combine(dir, "tokens.html")
            TokenHeatmapHtml.Render(path, "t", [ spam ])
            Expect.equal (File.ReadAllText path) (TokenHeatmapHtml.ToHtml("t", [ spam ])) "content"
            Expect.equal (Directory.GetFiles(dir).Length) 1 "only the page"
            let bad = TokenHighlight([| "a" |], [| Single.NaN |], "ham", "ham", "m")
            Expect.throwsC (fun () -> TokenHeatmapHtml.ToHtml("t", [ bad ]) |> ignore) (fun e -> Expect.stringContains e.Message "finite" "says why")
        }
    ]

let private pngTests =
    testList "TokenHeatmapPng" [
        test "the PNG decodes with the layout's size; each token box is filled with its colour (checked inside the padding)" {
            let path = Path.Combine(freshDir "tokens", "tokens.png")
            TokenHeatmapPng.Render(path, "Spam <vs> ham", [ spam; ham ], 400)
            use bitmap = SKBitmap.Decode path
            Expect.isNotNull bitmap "decodes"
            let layout = TokenHeatmapLayout([ spam; ham ], 400)
            Expect.equal (bitmap.Width, bitmap.Height) (layout.Width, layout.Height) "size"
            Expect.equal layout.Boxes.Count 8 "a box per token"
            let colourAt (box: TokenBox) = bitmap.GetPixel(int box.Rect.Left + 1, int box.Rect.Top + 1)
            Expect.equal (colourAt layout.Boxes[1]) Colormaps.SignedPositive "max score -> dark red"
            Expect.equal (colourAt layout.Boxes[2]) SKColors.White "zero -> white"
            Expect.equal (colourAt layout.Boxes[5]) Colormaps.SignedNegative "-max of the second text -> dark blue"
            Expect.equal (colourAt layout.Boxes[7]) (Colormaps.Diverging(0.5f)) "half of the max"
            Expect.isGreaterThan (layout.Boxes[5].Rect.Top) (layout.Boxes[4].Rect.Bottom) "the second text starts below the first"
        }

        test "long texts wrap inside the page width, left to right, line by line" {
            let tokens = Array.init 60 (fun i -> $"word{i}")
            let text = TokenHighlight(tokens, Array.init 60 float32, "ham", "ham", "m")
            let layout = TokenHeatmapLayout([ text ], 300)
            let lines = layout.Boxes |> Seq.map (fun b -> b.Rect.Top) |> Seq.distinct |> Seq.length
            Expect.isGreaterThan lines 3 "several lines"
            for b in layout.Boxes do
                Expect.isLessThanOrEqual b.Rect.Right (float32 (300 - TokenHeatmapLayout.Margin)) $"token {b.Token} inside the page"
            for i in 1 .. 59 do
                let a, b = layout.Boxes[i - 1].Rect, layout.Boxes[i].Rect
                Expect.isTrue (b.Top > a.Top || (b.Top = a.Top && b.Left > a.Right)) $"token {i} after token {i - 1}"
        }

        test "FromDataset keeps the real tokens only and spells label and prediction with the class names" {
            use scope = NewDisposeScope()
            let vocabulary = Vocabulary([| "<pad>"; "<unk>"; "free"; "money" |])
            use data = new TextDataset(tensor(array2D [| [| 2L; 3L; 0L |]; [| 3L; 1L; 2L |] |]), tensor([| 2L; 3L |]), tensor([| 1L; 0L |]), vocabulary, SpamAssassin.ClassNames)
            let h = TokenHighlight.FromDataset(data, 0, tensor(array2D [| [| 0.5f; -1.0f; 9.0f |]; [| 1.0f; 2.0f; 3.0f |] |]), 0L, "FI")
            Expect.sequenceEqual h.Tokens [ "free"; "money" ] "padding left out"
            Expect.sequenceEqual h.Scores [ 0.5f; -1.0f ] "its scores"
            Expect.equal h.Caption "label spam, predicted ham, FI" "caption"
        }
    ]

[<Tests>]
let tests = testList "Rendering.TokenHeatmap" [ htmlTests; pngTests ]
