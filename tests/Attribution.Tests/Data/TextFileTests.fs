/// A user's labelled texts in a JSON Lines or CSV file: parsing (RFC 4180 quoting), labels to classes, the
/// stratified split shared with the SpamAssassin corpus, and errors that name the file and line.
module TextFileTests

open System
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open Attribution.Data

/// A fresh folder for one test, deleted afterwards whatever happens.
let private inFolder (name: string) (body: string -> unit) =
    let root = TestFiles.freshDir name
    try body root finally Directory.Delete(root, true)

/// Writes text as UTF-8 without a byte-order mark (a test adds one where it wants one).
let private write (path: string) (content: string) = File.WriteAllText(path, content, Text.UTF8Encoding(false))

/// A label as a JSON file holds it: a string or a number.
type private JsonLabel =
    | S of string
    | I of int64

/// One JSON object a line.
let private jsonl (path: string) (rows: (string * JsonLabel) list) =
    let label = function S s -> JsonSerializer.Serialize s | I k -> string k
    rows
    |> List.map (fun (text, l) -> $"{{\"text\": {JsonSerializer.Serialize text}, \"label\": {label l}}}")
    |> String.concat "\n"
    |> write path

/// RFC 4180 as a spreadsheet writes it: every field quoted, quotes doubled, CRLF between records.
let private csv (path: string) (rows: (string * string) list) =
    let quote (s: string) = "\"" + s.Replace("\"", "\"\"") + "\""
    ("label,text" :: [ for text, label in rows -> quote label + "," + quote text ]) |> String.concat "\r\n" |> write path

let private ints (t: torch.Tensor) = t.data<int64>().ToArray()

let private texts (d: TextFileData) = d.Examples |> Seq.map (fun e -> e.Text) |> List.ofSeq
let private labels (d: TextFileData) = d.Examples |> Seq.map (fun e -> e.Label) |> List.ofSeq
let private lines (d: TextFileData) = d.Examples |> Seq.map (fun e -> e.Line) |> List.ofSeq

let private throwsWith<'e when 'e :> exn> (f: unit -> unit) (fragments: string list) =
    let e = Expect.throwsC f id
    Expect.isTrue (e :? 'e) $"{typeof<'e>.Name} expected; got {e.GetType().Name}: {e.Message}"
    for fragment in fragments do
        Expect.stringContains e.Message fragment "the message names what is wrong and where"

/// Forty texts of two classes with commas, quotes, line breaks and non-ASCII letters in them.
let private corpus =
    [ for i in 0 .. 39 ->
        let label = if i % 3 = 0 then "spam" else "ham"
        let second = if i % 5 = 0 then "\nsecond line" else ""
        let word = [| "alpha"; "beta"; "gamma" |].[i % 3]
        let text = $"Message {i}: \"win\", now{second} café {word}"
        text, label ]

let private sameSplit (a: TextSplit) (b: TextSplit) =
    for part, x, y in [ "train", a.Train, b.Train; "test", a.Test, b.Test ] do
        Expect.sequenceEqual (ints x.Tokens) (ints y.Tokens) $"{part} tokens"
        Expect.sequenceEqual (ints x.Lengths) (ints y.Lengths) $"{part} lengths"
        Expect.sequenceEqual (ints x.Labels) (ints y.Labels) $"{part} labels"
    Expect.sequenceEqual a.Train.Vocabulary.Tokens b.Train.Vocabulary.Tokens "vocabulary"
    Expect.sequenceEqual a.Train.ClassNames b.Train.ClassNames "class names"

let private formatTests =
    testList "formats" [
        test "JSON Lines and CSV holding the same texts and labels give the same examples and the same split" {
            inFolder "text-same" (fun dir ->
                use scope = torch.NewDisposeScope()
                let j, c = Path.Combine(dir, "d.jsonl"), Path.Combine(dir, "d.csv")
                jsonl j (corpus |> List.map (fun (t, l) -> t, S l))
                csv c corpus
                let fromJson, fromCsv = TextFile.Load j, TextFile.Load c
                Expect.sequenceEqual (texts fromCsv) (texts fromJson) "texts, line breaks and quotes included"
                Expect.sequenceEqual (texts fromJson) (corpus |> List.map fst) "the texts as written"
                Expect.sequenceEqual (labels fromCsv) (labels fromJson) "labels"
                let options = TextDataOptions(MaxLength = 12, MinCount = 1, TestFraction = 0.25, Seed = 4L)
                use a = TextFile.LoadSplit(j, options)
                use b = TextFile.LoadSplit(c, options)
                sameSplit a b)
        }

        test "a file of the SpamAssassin corpus's texts and labels gives the corpus's own split" {
            inFolder "text-spam" (fun dir ->
                use scope = torch.NewDisposeScope()
                let emails = corpus |> List.mapi (fun i (text, label) -> Email("g", string i, text, (if label = "spam" then 1L else 0L)))
                let path = Path.Combine(dir, "mail.jsonl")
                jsonl path (corpus |> List.map (fun (t, l) -> t, S l))
                let options = TextDataOptions(MaxLength = 10, MinCount = 2, TestFraction = 0.3, Seed = 9L)
                use fromFile = TextFile.LoadSplit(path, options)
                use fromCorpus = SpamAssassin.Encode(ResizeArray emails, options)
                sameSplit fromFile fromCorpus)
        }

        test "CSV: commas, doubled quotes and line breaks inside quotes, CRLF or LF, a BOM, blank lines, columns in any order; each example's line is where it starts" {
            inFolder "text-quoting" (fun dir ->
                let path = Path.Combine(dir, "q.csv")
                write path (
                    "\uFEFFid,label,text,extra\r\n"
                    + "1,spam,\"Buy now, pay later\",x\r\n"
                    + "2,ham,\"She said \"\"hi\"\"\",y\r\n"
                    + "3,ham,\"line one\nline two\",z\r\n"
                    + "4,spam,plain \"text,w\n"
                    + "\n"
                    + "5,ham,\"\",v")
                let data = TextFile.Load path
                Expect.sequenceEqual (texts data) [ "Buy now, pay later"; "She said \"hi\""; "line one\nline two"; "plain \"text"; "" ] "texts"
                Expect.sequenceEqual data.ClassNames [ "ham"; "spam" ] "classes"
                Expect.sequenceEqual (labels data) [ 1L; 0L; 0L; 1L; 0L ] "labels"
                Expect.sequenceEqual (lines data) [ 2; 3; 4; 6; 8 ] "record start lines (the quoted line break spans lines 4-5, line 7 is blank)")
        }
    ]

let private labelTests =
    testList "labels" [
        test "integer labels are classes 0..max named class_k, a missing class included" {
            inFolder "text-int" (fun dir ->
                let path = Path.Combine(dir, "i.jsonl")
                jsonl path [ "a", I 0L; "b", I 2L; "c", I 0L; "d", I 2L ]
                let data = TextFile.Load path
                Expect.sequenceEqual data.ClassNames [ "class_0"; "class_1"; "class_2" ] "0..2"
                Expect.sequenceEqual (labels data) [ 0L; 2L; 0L; 2L ] "the integers themselves")
        }

        test "CSV labels that read as integers are integers ('10' after '9'); '+1' and ' 1' are strings" {
            inFolder "text-csv-int" (fun dir ->
                let path = Path.Combine(dir, "i.csv")
                csv path [ "a", "10"; "b", "9"; "c", "007" ]
                let data = TextFile.Load path
                Expect.equal data.ClassNames.Count 11 "class_0 .. class_10"
                Expect.sequenceEqual (labels data) [ 10L; 9L; 7L ] "numeric values"
                csv path [ "a", "+1"; "b", " 1"; "c", "1" ]
                let data = TextFile.Load path
                Expect.sequenceEqual data.ClassNames [ " 1"; "+1"; "1" ] "strings in code-point order")
        }

        test "string labels are sorted by code point (Python's sorted); mixed integer and string labels are all strings" {
            inFolder "text-str" (fun dir ->
                let path = Path.Combine(dir, "s.jsonl")
                jsonl path [ for l in [ "b"; "\U0001F600"; "B"; "a"; "\uFF21"; "b" ] -> "t", S l ]
                let data = TextFile.Load path
                Expect.sequenceEqual data.ClassNames [ "B"; "a"; "b"; "\uFF21"; "\U0001F600" ] "code-point order (UTF-16 order would put the emoji before U+FF21)"
                Expect.sequenceEqual (labels data) [ 2L; 4L; 0L; 1L; 3L; 2L ] "label = rank of the name"
                jsonl path [ "t", I 1L; "u", S "spam"; "v", I 1L ]
                let data = TextFile.Load path
                Expect.sequenceEqual data.ClassNames [ "1"; "spam" ] "the integer in its decimal form"
                Expect.sequenceEqual (labels data) [ 0L; 1L; 0L ] "labels")
        }
    ]

let private splitTests =
    testList "split" [
        test "the split is stratified: each class sends round(n_c * fraction) to the test part; the seed fixes it" {
            inFolder "text-strat" (fun dir ->
                use scope = torch.NewDisposeScope()
                let path = Path.Combine(dir, "s.jsonl")
                // Each text has a word of its own (letters only, so the tokenizer keeps it whole).
                let own n = $"u{char (97 + n / 26)}{char (97 + n % 26)}"
                let classes = List.replicate 30 "a" @ List.replicate 12 "b" @ List.replicate 3 "c"
                let rows = classes |> List.mapi (fun n c -> $"{own n} common", S c)
                jsonl path rows
                let split seed = TextFile.LoadSplit(path, TextDataOptions(MaxLength = 4, MinCount = 1, TestFraction = 0.2, Seed = seed))
                use s = split 1L
                let count (d: TextDataset) = [ for k in 0L .. 2L -> ints d.Labels |> Array.filter ((=) k) |> Array.length ]
                // 30 * 0.2 = 6, 12 * 0.2 = 2.4 -> 2, 3 * 0.2 = 0.6 -> 1.
                Expect.sequenceEqual (count s.Test) [ 6; 2; 1 ] "test part per class"
                Expect.sequenceEqual (count s.Train) [ 24; 10; 2 ] "training part per class"
                use again = split 1L
                use other = split 2L
                let words (d: TextDataset) = [ for i in 0 .. d.Count - 1 -> d.Decode i ]
                Expect.sequenceEqual (words again.Train) (words s.Train) "same seed, same split"
                Expect.notEqual (words other.Train) (words s.Train) "another seed, another split"
                Expect.isTrue (words s.Test |> List.forall (fun w -> w.StartsWith "<unk>")) "a word only test texts have is unknown: the vocabulary is the training part's")
        }
    ]

let private errorTests =
    testList "errors" [
        test "JSON Lines: malformed JSON, a missing field, a mistyped label, a non-object, each with file and line" {
            inFolder "text-json-errors" (fun dir ->
                let path = Path.Combine(dir, "e.jsonl")
                let load () = TextFile.Load path |> ignore
                let ok = """{"text": "fine", "label": "a"}"""
                write path (String.concat "\n" [ ok; ""; """{"text": "broken", "label": """ ])
                throwsWith<InvalidDataException> load [ $"{path}:3: malformed JSON" ]
                write path (String.concat "\n" [ ok; """{"text": "no label"}""" ])
                throwsWith<InvalidDataException> load [ $"{path}:2: missing field 'label'" ]
                write path (String.concat "\n" [ """{"label": "a"}""" ])
                throwsWith<InvalidDataException> load [ $"{path}:1: missing field 'text'" ]
                write path (String.concat "\n" [ ok; ok; """{"text": "x", "label": 1.5}""" ])
                throwsWith<InvalidDataException> load [ $"{path}:3: field 'label' must be a string or an integer"; "1.5" ]
                write path (String.concat "\n" [ ok; "[1, 2]" ])
                throwsWith<InvalidDataException> load [ $"{path}:2: a line holds one JSON object" ]
                write path (String.concat "\n" [ ok; """{"text": null, "label": "b"}""" ])
                throwsWith<InvalidDataException> load [ $"{path}:2: field 'text' must be a string" ])
        }

        test "CSV: an unclosed quote names the line it opened on; a missing column, a short row and text after a closing quote name theirs" {
            inFolder "text-csv-errors" (fun dir ->
                let path = Path.Combine(dir, "e.csv")
                let load () = TextFile.Load path |> ignore
                write path "text,label\nfine,a\n\"never closed,b\nmore\n"
                throwsWith<InvalidDataException> load [ $"{path}:3: a quoted field opened on this line is never closed" ]
                write path "text,category\nfine,a\n"
                throwsWith<InvalidDataException> load [ $"{path}:1: the header has no column 'label'" ]
                write path "text,label\nfine,a\n\"two\nlines\",b\nthree,fields,here\n"
                throwsWith<InvalidDataException> load [ $"{path}:5: 3 fields, but the header has 2" ]
                write path "text,label\n\"quoted\"tail,a\n"
                throwsWith<InvalidDataException> load [ $"{path}:2: 't' after the closing quote" ]
                write path ""
                throwsWith<InvalidDataException> load [ $"{path}:1: no header row" ])
        }

        test "no examples, one class, a negative or huge integer label, an unknown extension, a missing file" {
            inFolder "text-content-errors" (fun dir ->
                let csvPath, jsonPath = Path.Combine(dir, "e.csv"), Path.Combine(dir, "e.jsonl")
                write csvPath "text,label\r\n"
                throwsWith<InvalidDataException> (fun () -> TextFile.Load csvPath |> ignore) [ csvPath; "no examples" ]
                csv csvPath [ "a", "spam"; "b", "spam"; "c", "spam" ]
                throwsWith<InvalidDataException> (fun () -> TextFile.Load csvPath |> ignore) [ csvPath; "all 3 examples have the label 'spam'"; "two classes" ]
                jsonl jsonPath [ "a", I 0L; "b", I -1L ]
                throwsWith<InvalidDataException> (fun () -> TextFile.Load jsonPath |> ignore) [ $"{jsonPath}:2: label -1 is negative" ]
                jsonl jsonPath [ "a", I 0L; "b", I 20240101L ]
                throwsWith<InvalidDataException> (fun () -> TextFile.Load jsonPath |> ignore) [ $"{jsonPath}:2: label 20240101 would make 20240102 classes" ]
                let txt = Path.Combine(dir, "e.txt")
                write txt "text,label\n"
                throwsWith<InvalidDataException> (fun () -> TextFile.Load txt |> ignore) [ txt; ".jsonl"; ".csv" ]
                let missing = Path.Combine(dir, "absent.csv")
                throwsWith<FileNotFoundException> (fun () -> TextFile.Load missing |> ignore) [ missing ])
        }
    ]

[<Tests>]
let tests = testList "text file" [ formatTests; labelTests; splitTests; errorTests ]
