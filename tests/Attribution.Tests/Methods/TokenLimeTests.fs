/// LIME on text (words as features, <unk> replacement, padding never a feature) and the random chance baseline.
module TokenLimeTests

open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators // torch's float32, int64, ... dtypes would shadow the conversions
open Attribution.Methods
open Attribution.Models

let private positions = 10L

/// Logits [s, -s], s = sum over positions of a . e_t with 2-d embeddings; <pad> (id 0) embeds to 0, <unk> (id 1) to a
/// non-zero vector. Replacing word t by <unk> moves logit c by sign_c a . (unk - e_t) exactly, whatever else is kept.
type LinearText() as this =
    inherit TextModel("linear_text")
    let embedding = nn.Embedding(8L, 2L, padding_idx = 0L)
    let a = tensor([| 1.5f; -0.7f |])
    do this.RegisterComponents()
    do
        use noGrad = no_grad()
        let table = tensor(array2D [| [| 0.0f; 0.0f |]; [| 0.3f; -0.2f |]; [| 1.0f; 0.5f |]; [| -0.9f; 0.4f |]
                                      [| 0.2f; -1.1f |]; [| -0.4f; -0.6f |]; [| 0.7f; 0.9f |]; [| -1.2f; 0.1f |] |])
        match embedding.weight with
        | null -> ()
        | w -> w.copy_(table) |> ignore
    member _.Direction = a
    override _.EmbeddingSize = 2
    override _.Embed(tokens) = embedding.forward(tokens)
    override _.forward(e) =
        use scope = NewDisposeScope()
        let s = e.matmul(a).sum([| 1L |])
        stack([| s; s.neg() |], 1L).MoveToOuterDisposeScope()

/// Three texts of lengths 10, 6 and 3 (tokens 2..7, <pad> after); targets 0, 1, 0.
let private texts = tensor(array2D [| [| 2L; 3L; 4L; 5L; 6L; 7L; 2L; 4L; 6L; 3L |]
                                      [| 7L; 7L; 5L; 2L; 3L; 6L; 0L; 0L; 0L; 0L |]
                                      [| 4L; 2L; 6L; 0L; 0L; 0L; 0L; 0L; 0L; 0L |] |])
let private targets = tensor([| 0L; 1L; 0L |])
let private lengths = [| 10; 6; 3 |]

let private view (m: TextModel) = new ReshapedModel(m, [| positions; 2L |], [| positions; 1L; 2L |])

let private same (a: Tensor) (b: Tensor) = Seq.forall2 (=) a.shape b.shape && a.eq(b).all().item<bool>()

let private logitOptions () = ExplainOptions(Output = OutputFunction.Logit)

[<Tests>]
let tests =
    testList "lime_text" [
        test "on a model linear in the embeddings LIME recovers each word's exact effect of being replaced by <unk>, and padding scores 0" {
            use scope = NewDisposeScope()
            let m = new LinearText()
            let v = view m
            use noGrad = no_grad()
            let e = m.Embed(texts)
            let unknown = m.Embed(tensor([| 1L |])).[0L]
            let lime = TokenLime(unknown, samples = 200)
            use explanation = lime.Explain(v, v.ToView(e), targets, logitOptions ())
            Expect.sequenceEqual explanation.Maps.shape [| 3L; positions; 1L; 2L |] "shaped like the inputs"
            let scores = TokenScores.Sum(explanation.Maps.reshape(3L, positions, 2L))
            let sign = tensor([| 1.0f; -1.0f; 1.0f |]).view(3L, 1L)
            let exact = (e - unknown).matmul(m.Direction) * sign                                   // [3, T]
            for i in 0 .. 2 do
                let l = int64 lengths.[i]
                let got = scores.[int64 i].narrow(0L, 0L, l)
                let want = exact.[int64 i].narrow(0L, 0L, l)
                Expect.isTrue (got.allclose(want, 1e-4, 1e-4)) $"text {i}: word effects {got} vs {want}"
                if l < positions then
                    Expect.equal (scores.[int64 i].narrow(0L, l, positions - l).abs().max().item<float32>()) 0.0f $"text {i}: padding scores 0"
        }

        test "LIME on text: the same map twice, per input (batch independent), through the view as on the model" {
            use scope = NewDisposeScope()
            torch.manual_seed(3L) |> ignore
            let m = new TextBiLstm(TextBiLstm.Shape(8, EmbeddingSize = 2, Hidden = 3))
            m.eval() |> ignore
            let v = view m
            use noGrad = no_grad()
            let e = m.Embed(texts)
            let lime = TokenLime(m.Embed(tensor([| 1L |])).[0L], samples = 64)
            use a = lime.Explain(v, v.ToView(e), targets, ExplainOptions())
            use b = lime.Explain(v, v.ToView(e), targets, ExplainOptions())
            Expect.isTrue (same a.Maps (b.Maps)) "bit-identical twice"
            use alone = lime.Explain(v, v.ToView(e).narrow(0L, 1L, 1L), targets.narrow(0L, 1L, 1L), ExplainOptions(InputKeys = [| 1L |]))
            TestModels.expectCloseOnScale 1e-5 (a.Maps.narrow(0L, 1L, 1L)) alone.Maps "an input's map does not depend on its batch"
            use direct = lime.Explain(m, e, targets, ExplainOptions())
            Expect.isTrue (direct.Maps.allclose(a.Maps.reshape(3L, positions, 2L), 1e-5, 1e-6)) "model and view agree"
        }

        test "LIME on text refuses inputs whose last axis is not the embedding" {
            let lime = TokenLime(zeros(2L), samples = 8)
            let m = new LinearText()
            Expect.throwsT<System.ArgumentException> (fun () -> lime.Explain(m, zeros(1L, positions, 3L), tensor([| 0L |]), ExplainOptions()) |> ignore) "E = 3 against an embedding of 2"
        }

        test "random: U(0, 1) maps shaped like the inputs, reproducible, batch independent, different across inputs" {
            use scope = NewDisposeScope()
            torch.manual_seed(4L) |> ignore   // the maps ignore the model, but its weights come from a seed of this test
            let net = nn.Linear(16L, 3L)
            let inputs = TestModels.normal 43 [| 6L; 1L; 4L; 4L |]
            let model = nn.Sequential(nn.Flatten(), net)
            let t = tensor([| 0L; 1L; 2L; 0L; 1L; 2L |])
            let method = RandomAttribution()
            use a = method.Explain(model, inputs, t, ExplainOptions())
            use b = method.Explain(model, inputs, t, ExplainOptions())
            Expect.sequenceEqual a.Maps.shape inputs.shape "shaped like the inputs"
            Expect.isTrue (same a.Maps (b.Maps)) "the same seed, the same maps"
            Expect.isTrue (a.Maps.min().item<float32>() >= 0.0f && a.Maps.max().item<float32>() < 1.0f) "in [0, 1)"
            use alone = method.Explain(model, inputs.narrow(0L, 4L, 1L), t.narrow(0L, 4L, 1L), ExplainOptions(InputKeys = [| 4L |]))
            Expect.isTrue (same (a.Maps.narrow(0L, 4L, 1L)) alone.Maps) "an input's map does not depend on its batch"
            Expect.isFalse (same (a.Maps.[0L]) (a.Maps.[1L])) "inputs get different maps"
            use other = method.Explain(model, inputs, t, ExplainOptions(Seed = 99L))
            Expect.isFalse (same a.Maps (other.Maps)) "another seed, other maps"
            use many = method.Explain(model, TestModels.normal 44 [| 200L; 1L; 4L; 4L |], zeros(200L, dtype = ScalarType.Int64), ExplainOptions())
            // 3,200 uniforms: mean 1/2 within 5 standard errors (sqrt(1/12 / 3200) = 0.0051), variance 1/12 within 10%.
            Expect.floatClose { absolute = 0.026; relative = 0.0 } (many.Maps.mean().item<float32>() |> float) 0.5 "mean 1/2"
            Expect.floatClose { absolute = 0.0; relative = 0.1 } (many.Maps.var().item<float32>() |> float) (1.0 / 12.0) "variance 1/12"
        }
    ]
