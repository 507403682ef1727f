/// InputIBA on text (Zhang et al. 2021, Sec. 4, IMDB): the input bottleneck on the embeddings, the feature bottleneck on
/// a per-position stage of the text model, and the text models' stages (ILayeredModel) through the [B, T, 1, E] view.
module InputIbaTextTests

open System.Collections.Generic
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Models

let private positions = 8L
let private width = 3L

/// A text model over a vocabulary of 6 with fixed embeddings [B, T = 8, E = 3]. Stage "positions": per position
/// h = (e1 + e2 + e3, e1 - e2) [B, T, 2]; stage "head": c = 2 * sum of h_1 over the FIRST HALF (positions 0..3), logits
/// [c, -c]. Positions 4..7 never reach the output, whatever token they hold.
type HalfText() as this =
    inherit TextModel("half_text")
    let embedding = nn.Embedding(6L, width, padding_idx = 0L)
    let mixing = tensor(array2D [| [| 1.0f; 1.0f |]; [| 1.0f; -1.0f |]; [| 1.0f; 0.0f |] |])
    do this.RegisterComponents()
    do
        use noGrad = no_grad()
        let table = tensor(array2D [| [| 0.0f; 0.0f; 0.0f |]; [| 0.1f; -0.2f; 0.1f |]; [| 1.0f; 0.5f; 0.8f |]
                                      [| -0.9f; -0.6f; -1.0f |]; [| 0.3f; -0.4f; 0.2f |]; [| -0.2f; 0.7f; -0.3f |] |])
        match embedding.weight with
        | null -> ()
        | w -> w.copy_(table) |> ignore
    let features (e: Tensor) = e.matmul(mixing)
    let head (h: Tensor) =
        use scope = NewDisposeScope()
        let c = h.narrow(1L, 0L, positions / 2L).narrow(2L, 0L, 1L).sum([| 1L; 2L |]) * 2.0
        stack([| c; -c |], 1L).MoveToOuterDisposeScope()
    override _.EmbeddingSize = int width
    override _.Embed(tokens) = embedding.forward(tokens)
    override _.forward(e) =
        use scope = NewDisposeScope()
        (head (features e)).MoveToOuterDisposeScope()
    interface ILayeredModel with
        member _.Stages = [| "positions"; "head" |] :> IReadOnlyList<string>
        member _.ParameterStages = Array.empty<string> :> IReadOnlyList<string>
        member _.ForwardTo(stage, e) = if stage = "positions" then features e else head (features e)
        member _.ForwardFrom(stage, h) = if stage = "positions" then head h else h.alias()
        member _.Reinitialise(_, _) = ()

/// The [B, T, 1, E] view the experiment layer puts in front of a text model.
let private view (m: TextModel) = new ReshapedModel(m, [| positions; int64 m.EmbeddingSize |], [| positions; 1L; int64 m.EmbeddingSize |])

/// 64 random texts (tokens 1..5, lengths 3..8, <pad> after), their embeddings in the view's shape, and their lengths.
let private references (m: TextModel) =
    use g = new Generator(17UL, CPU)
    let tokens = randint(1L, 6L, [| 64L; positions |], dtype = ScalarType.Int64, generator = g)
    let lengths = randint(3L, positions + 1L, [| 64L |], dtype = ScalarType.Int64, generator = g)
    let padding = TokenScores.PaddingMask(lengths, positions, CPU)
    let tokens = tokens.masked_fill(padding, 0L)
    use noGrad = no_grad()
    m.Embed(tokens).reshape(64L, positions, 1L, int64 m.EmbeddingSize), lengths

/// Two texts whose first half says class 0 (token 2, large positive h_1) and class 1 (token 3); the second halves differ.
let private texts = tensor(array2D [| [| 2L; 2L; 4L; 2L; 3L; 3L; 5L; 0L |]; [| 3L; 5L; 3L; 3L; 2L; 2L; 2L; 4L |] |])

let private same (a: Tensor) (b: Tensor) = Seq.forall2 (=) a.shape b.shape && a.eq(b).all().item<bool>()

/// InputIBA with the text defaults and statistics estimated on the references through the view.
let private textIba (m: TextModel) stage epochs map =
    let v = view m
    let refs, lengths = references m
    let features = InformationBottleneck.EstimateActivationStatistics(v, stage, refs)
    let inputs = InputStatistics.EstimateTokens(refs, lengths)
    v, InputIba.ForText(features, inputs, map, epochs)

let private layersOf (m: TextModel) : ILayeredModel =
    match box m with
    | :? ILayeredModel as l -> l
    | _ -> failwith $"{m.GetType().Name} has no stages"

/// Text models small enough for exact stage checks, each with every pooling it offers.
let private textModels () : (string * TextModel) list =
    let seeded seed (build: unit -> TextModel) =
        torch.manual_seed(int64 seed) |> ignore
        let m = build ()
        m.eval() |> ignore
        m
    [ "lstm max", seeded 1 (fun () -> new TextLstm(TextLstm.Shape(10, EmbeddingSize = 4, Hidden = 5)))
      "lstm final", seeded 2 (fun () -> new TextLstm(TextLstm.Shape(10, EmbeddingSize = 4, Hidden = 5, Pooling = SequencePooling.FinalStates)))
      "bilstm final", seeded 3 (fun () -> new TextBiLstm(TextBiLstm.Shape(10, EmbeddingSize = 4, Hidden = 5)))
      "bilstm max", seeded 4 (fun () -> new TextBiLstm(TextBiLstm.Shape(10, EmbeddingSize = 4, Hidden = 5, Pooling = SequencePooling.MaxOverTime)))
      "cnn", seeded 5 (fun () -> new TextCnn(TextCnn.Shape(10, EmbeddingSize = 4, FiltersPerWidth = 3)))
      "transformer class token", seeded 6 (fun () -> new TextTransformer(TextTransformer.Shape(10, EmbeddingSize = 4, Heads = 2, Layers = 2, FeedForward = 8)))
      "transformer mean", seeded 7 (fun () -> new TextTransformer(TextTransformer.Shape(10, EmbeddingSize = 4, Heads = 2, Layers = 1, FeedForward = 8, Pooling = TransformerPooling.Mean))) ]

[<Tests>]
let tests =
    testList "input_iba_text" [
        test "every text model and stage: ForwardFrom(stage, ForwardTo(stage, e)) = forward(e) to 1e-5, through the [B, T, 1, E] view too, and the stages chain" {
            use scope = NewDisposeScope()
            use g = new Generator(5UL, CPU)
            let tokens = randint(1L, 10L, [| 3L; positions |], dtype = ScalarType.Int64, generator = g)
            tokens.narrow(0L, 0L, 1L).narrow(1L, 5L, 3L).fill_(Scalar.op_Implicit 0L) |> ignore   // trailing <pad>
            use noGrad = no_grad()
            for name, m in textModels () do
                let layered = layersOf m
                let v = view m
                let e = m.Embed(tokens)
                let logits = m.forward(e)
                let close (a: Tensor) what = Expect.isTrue (a.allclose(logits, 1e-5, 1e-5)) $"{name}, {what}: max |diff| {(a - logits).abs().max().item<float32>()}"
                for stage in layered.Stages do
                    close (layered.ForwardFrom(stage, layered.ForwardTo(stage, e))) $"stage {stage}"
                    close (v.ForwardFrom(stage, v.ForwardTo(stage, v.ToView(e)))) $"stage {stage} through the view"
                let chained = layered.Stages |> Seq.fold (fun h stage -> layered.ForwardStage(stage, h)) e
                close chained "ForwardStage chained"
                let viaView = layered.Stages |> Seq.fold (fun h stage -> v.ForwardStage(stage, h)) (v.ToView(e))
                close viaView "ForwardStage chained through the view"
                let perPosition = layered.ForwardTo(layered.Stages.[0], e)
                Expect.equal perPosition.shape.[0] 3L $"{name}: batch axis"
                Expect.isGreaterThanOrEqual perPosition.shape.[1] positions $"{name}: the first stage keeps the positions"
                Expect.equal (layered.ForwardTo(layered.Stages.[layered.Stages.Count - 2], e).dim()) 2L $"{name}: the stage before the logits is pooled [B, D]"
        }

        test "Reinitialise changes the logits for every parameter stage of every text model, and only the stage's parameters" {
            use scope = NewDisposeScope()
            use g = new Generator(6UL, CPU)
            let tokens = randint(1L, 10L, [| 2L; positions |], dtype = ScalarType.Int64, generator = g)
            use noGrad = no_grad()
            for name, m in textModels () do
                let layered = layersOf m
                let e = m.Embed(tokens)
                for stage in layered.ParameterStages do
                    // As after training: no parameter sits at a fixed initial value (layer norms start at exactly 1 and 0).
                    for p in m.parameters() do p.add_(randn(p.shape, generator = g) * 0.1) |> ignore
                    let before = m.parameters() |> Seq.map (fun p -> p.clone()) |> Seq.toArray
                    let logits = m.forward(e)
                    use rg = new Generator(9UL, CPU)
                    layered.Reinitialise(stage, rg)
                    let changed = Seq.zip before (m.parameters()) |> Seq.filter (fun (a, b) -> not (same a b)) |> Seq.length
                    Expect.isGreaterThan changed 0 $"{name}, {stage}: parameters redrawn"
                    Expect.isLessThan changed before.Length $"{name}, {stage}: not every parameter"
                    Expect.isFalse (logits.allclose(m.forward(e), 1e-6, 1e-6)) $"{name}, {stage}: the logits change"
        }

        test "token statistics average over the words only: <pad> zero vectors do not enter mu_I and sigma_I" {
            use scope = NewDisposeScope()
            // Two texts of lengths 2 and 1 over [T = 3, E = 2]; the words are (1, 2), (3, 6), (5, 4); the rest are pads.
            let e = tensor([| 1.0f; 2.0f; 3.0f; 6.0f; 0.0f; 0.0f; 5.0f; 4.0f; 0.0f; 0.0f; 0.0f; 0.0f |]).reshape(2L, 3L, 1L, 2L)
            use s = InputStatistics.EstimateTokens(e, tensor([| 2L; 1L |]))
            Expect.sequenceEqual s.Mean.shape [| 1L; 1L; 2L |] "per coordinate, broadcasting against one [T, 1, E] input"
            Expect.sequenceEqual (s.Mean.flatten().data<float32>().ToArray()) [| 3.0f; 4.0f |] "the words' mean"
            Expect.sequenceEqual (s.Std.flatten().data<float32>().ToArray()) [| 2.0f; 2.0f |] "the words' unbiased std"
        }

        test "InputIBA (text defaults, no WGAN epochs) through the view: ~0 bits on the positions the model ignores, clearly more on those it reads" {
            use scope = NewDisposeScope()
            let m = new HalfText()
            let v, method = textIba m "positions" 0 InputIbaMap.CapacityBits
            let x = v.ToView(m.Embed(texts))
            let t = tensor([| 0L; 1L |])
            use e = method.Explain(v, x, t, ExplainOptions())
            Expect.sequenceEqual e.Maps.shape x.shape "[B, T, 1, E], shaped like the inputs"
            let scores = TokenScores.Sum(e.Maps.reshape(2L, positions, width))
            for i in 0L .. 1L do
                let read = scores.[i].narrow(0L, 0L, 4L)
                let ignored = scores.[i].narrow(0L, 4L, 4L)
                let weakestRead = read.min().item<float32>()
                let strongestIgnored = ignored.max().item<float32>()
                Expect.isGreaterThan weakestRead 0.02f $"input {i}: every read word carries bits ({weakestRead})"
                // 20 Adam steps of 0.5 move alpha by at most ~10: Lambda >= sigmoid(5 - 10) ~ 0.007 on an ignored word, a
                // floor of a few thousandths of a bit for its three coordinates; nothing else keeps it open.
                Expect.isLessThan strongestIgnored 0.01f $"input {i}: the ignored words ~0 bits ({strongestIgnored})"
                Expect.isLessThan strongestIgnored (0.1f * weakestRead) $"input {i}: the ignored words well below the read ones ({strongestIgnored} vs {weakestRead})"
            use masks = (snd (textIba m "positions" 0 InputIbaMap.Mask)).Explain(v, x, t, ExplainOptions())
            let lambda = masks.Maps.reshape(2L, positions, width)
            // Per coordinate a read word's mask may close where its value is close to the noise's mean (nothing to lose).
            Expect.isGreaterThan (lambda.narrow(1L, 0L, 4L).mean().item<float32>()) 0.5f "Lambda* stays open on the read half, on average"
            Expect.isLessThan (lambda.narrow(1L, 4L, 4L).max().item<float32>()) 0.1f "Lambda* closes on the ignored half (Adam's steps shrink with the KL gradient, so it stops short of sigmoid(-5))"
        }

        test "IBA on text through the view: a word's score is its position's bits, ~0 where the model never reads, and the [B, T, E] model agrees" {
            use scope = NewDisposeScope()
            let m = new HalfText()
            let v = view m
            let refs, _ = references m
            // beta 0.5: the reference code's text setting (its feature bottleneck); at the image default 10 this model's
            // large logits leave the CE ~0 under any noise, and every position closes.
            let iba = InformationBottleneck(InformationBottleneck.EstimateActivationStatistics(v, "positions", refs), beta = 0.5)
            let x = v.ToView(m.Embed(texts))
            let t = tensor([| 0L; 1L |])
            use e = iba.Explain(v, x, t, ExplainOptions())
            Expect.sequenceEqual e.Maps.shape x.shape "[B, T, 1, E], shaped like the inputs"
            let perCoordinate = e.Maps.reshape(2L, positions, width)
            Expect.isTrue (perCoordinate.eq(perCoordinate.narrow(2L, 0L, 1L)).all().item<bool>()) "one value for every coordinate of a word"
            let scores = TokenScores.Sum(perCoordinate)
            // capacity_bits is the mean over the [T, H] elements: times T H it is the sum of the words' scores.
            let total = e.Diagnostics.["capacity_bits"] * float (positions * 2L)
            Expect.isTrue (scores.sum(1L).allclose(total, 1e-4, 1e-6)) $"the words' scores add up to the capacity ({scores.sum(1L)} vs {total})"
            for i in 0L .. 1L do
                let weakestRead = scores.[i].narrow(0L, 0L, 4L).min().item<float32>()
                let strongestIgnored = scores.[i].narrow(0L, 4L, 4L).max().item<float32>()
                // Token 5 moves h_1 by only 0.2 (about the references' mean): it carries far fewer bits than the others.
                Expect.isGreaterThan weakestRead 0.05f $"input {i}: every read word carries bits ({weakestRead})"
                // 10 Adam steps of 1 move alpha from 5 to no less than -5: lambda >= 0.0067, a floor of ~0.002 bits per word.
                Expect.isLessThan strongestIgnored 0.005f $"input {i}: the ignored words ~0 bits ({strongestIgnored})"
                Expect.isLessThan strongestIgnored (0.1f * weakestRead) $"input {i}: the ignored words ~0 bits ({strongestIgnored} vs {weakestRead})"
            let flat = refs.reshape(64L, positions, width)
            let direct = InformationBottleneck(InformationBottleneck.EstimateActivationStatistics(m, "positions", flat), beta = 0.5)
            use d = direct.Explain(m, m.Embed(texts), t, ExplainOptions())
            Expect.isTrue (d.Maps.allclose(perCoordinate, 1e-5, 1e-6)) "the model and its view agree"
            use alone = iba.Explain(v, x.narrow(0L, 1L, 1L), t.narrow(0L, 1L, 1L), ExplainOptions(InputKeys = [| 1L |]))
            TestModels.expectCloseOnScale 1e-5 (e.Maps.narrow(0L, 1L, 1L)) alone.Maps "an input's map does not depend on its batch"
        }

        test "InputIBA with a WGAN epoch on a BiLSTM through the view: deterministic, per input, equal to InputIBA on the model itself" {
            use scope = NewDisposeScope()
            torch.manual_seed(12L) |> ignore
            let m = new TextBiLstm(TextBiLstm.Shape(6, EmbeddingSize = 3, Hidden = 4))
            m.eval() |> ignore
            let v, method = textIba m InputIba.TextDefaultStage 1 InputIbaMap.CapacityBits
            let x = v.ToView(m.Embed(texts))
            let t = tensor([| 0L; 1L |])
            use a = method.Explain(v, x, t, ExplainOptions())
            use b = method.Explain(v, x, t, ExplainOptions())
            Expect.sequenceEqual a.Maps.shape x.shape "[B, T, 1, E]"
            Expect.isTrue (same a.Maps b.Maps) "bit-identical twice"
            Expect.isTrue (a.Maps.isfinite().all().item<bool>()) "finite"
            Expect.isGreaterThan (a.Maps.sum().item<float32>()) 0.0f "some capacity"
            for name in [ "wasserstein_first_epoch"; "wasserstein_last_epoch"; "feature_capacity_bits" ] do
                Expect.isTrue (a.Diagnostics.[name].isfinite().all().item<bool>()) $"{name}: the critic ran"
            use alone = method.Explain(v, x.narrow(0L, 1L, 1L), t.narrow(0L, 1L, 1L), ExplainOptions(InputKeys = [| 1L |]))
            TestModels.expectCloseOnScale 1e-4 (a.Maps.narrow(0L, 1L, 1L)) alone.Maps "an input's map does not depend on its batch"
            // The view changes nothing but the shape: no channel sum over positions, no blur over coordinates.
            let refs, lengths = references m
            let flat = refs.reshape(64L, positions, 3L)
            let directMethod =
                InputIba.ForText(InformationBottleneck.EstimateActivationStatistics(m, InputIba.TextDefaultStage, flat),
                                 InputStatistics.EstimateTokens(flat, lengths), InputIbaMap.CapacityBits, 1)
            use direct = directMethod.Explain(m, m.Embed(texts), t, ExplainOptions())
            Expect.isTrue (direct.Maps.allclose(a.Maps.reshape(2L, positions, 3L), 1e-5, 1e-6)) "the [B, T, E] model and its [B, T, 1, E] view agree"
        }
    ]
