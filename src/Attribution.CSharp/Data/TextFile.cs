using System.Globalization;
using System.Text.Json;

namespace Attribution.Data;

/// <summary>One labelled text of a user's file: the text, its label (an index into the class names) and the line it starts on.</summary>
public sealed record LabelledText(string Text, long Label, int Line);

/// <summary>What a text file holds: the examples in file order and the class names in label order.</summary>
public sealed record TextFileData(IReadOnlyList<LabelledText> Examples, IReadOnlyList<string> ClassNames);

/// <summary>
/// A user's labelled texts in one file: JSON Lines (<c>.jsonl</c>, <c>.ndjson</c>: one object a line with a string
/// field <c>text</c> and a field <c>label</c>, a string or an integer; other fields are ignored, blank lines skipped) or
/// CSV (<c>.csv</c>: RFC 4180, a header row naming the columns <c>text</c> and <c>label</c>, in any position among
/// others). Labels become classes as scikit-learn's <c>LabelEncoder</c> would make them: when every label is an integer,
/// the classes are 0..max, named <c>class_k</c>; otherwise they are the distinct labels as strings (an integer in its
/// decimal form), sorted by code point, label k the k-th. In CSV every field is text, so a label is an integer when it
/// reads as one (an optional '-' and digits). The file is only read.
/// </summary>
public static class TextFile
{
    /// <summary>The examples of <paramref name="path"/> and their classes (see <see cref="TextFile"/>).</summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">
    /// The extension is not .jsonl, .ndjson or .csv, or the content is wrong (malformed JSON, a missing or mistyped
    /// field, an unclosed quote, a row of the wrong width, a negative integer label, no examples, one class only);
    /// the message names the file and, where there is one, the line.
    /// </exception>
    public static TextFileData Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"text file '{path}' does not exist", path);
        var raw = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".jsonl" or ".ndjson" => ReadJsonLines(path),
            ".csv" => ReadCsv(path),
            var other => throw new InvalidDataException(
                $"{path}: a text file is JSON Lines (.jsonl, .ndjson) or CSV (.csv); got the extension '{other}'"),
        };
        if (raw.Count == 0) throw new InvalidDataException($"{path}: no examples; it needs at least one text of each of two classes");
        return Classify(raw, path);
    }

    /// <summary>
    /// The examples of <paramref name="path"/> split, with a vocabulary and encoded exactly as the SpamAssassin corpus is
    /// (<see cref="TextSplit.Encode"/>: stratified seeded split, vocabulary from the training part).
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">As for <see cref="Load"/>.</exception>
    public static TextSplit LoadSplit(string path, TextDataOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var data = Load(path);
        return TextSplit.Encode(data.Examples.Select(e => e.Text).ToArray(), data.Examples.Select(e => e.Label).ToArray(), data.ClassNames, options);
    }

    /// <summary>The most classes integer labels may make (labels 0..MaxIntegerClasses-1).</summary>
    public const int MaxIntegerClasses = 100_000;

    /// <summary>A label as read: an integer, or a string that is not one.</summary>
    sealed record RawLabel(long? Integer, string Text);

    sealed record RawExample(string Text, RawLabel Label, int Line);

    static List<RawExample> ReadJsonLines(string path)
    {
        var examples = new List<RawExample>();
        int line = 0;
        foreach (var content in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(content)) continue;
            JsonDocument json;
            try { json = JsonDocument.Parse(content); }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{line}: malformed JSON ({e.Message})", e); }
            using (json)
            {
                var root = json.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    throw new InvalidDataException($"{path}:{line}: a line holds one JSON object {{\"text\": ..., \"label\": ...}}; got a {root.ValueKind.ToString().ToLowerInvariant()}");
                JsonElement Field(string name) => root.TryGetProperty(name, out var value) ? value
                    : throw new InvalidDataException($"{path}:{line}: missing field '{name}'; each line needs \"text\" (a string) and \"label\" (a string or an integer)");
                var text = Field("text");
                if (text.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException($"{path}:{line}: field 'text' must be a string; got {text.GetRawText()}");
                var label = Field("label");
                var raw = label.ValueKind switch
                {
                    JsonValueKind.String => new RawLabel(null, label.GetString()!),
                    JsonValueKind.Number when label.TryGetInt64(out long k) => new RawLabel(k, k.ToString(CultureInfo.InvariantCulture)),
                    _ => throw new InvalidDataException($"{path}:{line}: field 'label' must be a string or an integer; got {label.GetRawText()}"),
                };
                examples.Add(new RawExample(text.GetString()!, raw, line));
            }
        }
        return examples;
    }

    static List<RawExample> ReadCsv(string path)
    {
        var records = CsvRecords.Parse(File.ReadAllText(path), path);
        if (records.Count == 0)
            throw new InvalidDataException($"{path}:1: no header row; a CSV text file starts with a header naming the columns text and label");
        var header = records[0];
        int Column(string name)
        {
            var matches = Enumerable.Range(0, header.Fields.Count).Where(i => header.Fields[i] == name).ToArray();
            return matches.Length switch
            {
                1 => matches[0],
                0 => throw new InvalidDataException($"{path}:{header.Line}: the header has no column '{name}'; it names [{string.Join(", ", header.Fields)}] and needs text and label"),
                _ => throw new InvalidDataException($"{path}:{header.Line}: the header names the column '{name}' {matches.Length} times"),
            };
        }
        int textColumn = Column("text"), labelColumn = Column("label");
        var examples = new List<RawExample>();
        foreach (var record in records.Skip(1))
        {
            if (record.Fields.Count != header.Fields.Count)
                throw new InvalidDataException(
                    $"{path}:{record.Line}: {record.Fields.Count} fields, but the header has {header.Fields.Count}; a field holding a comma, quote or line break must be in double quotes");
            var label = record.Fields[labelColumn];
            long? integer = IsInteger(label) && long.TryParse(label, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long k) ? k : null;
            examples.Add(new RawExample(record.Fields[textColumn], new RawLabel(integer, label), record.Line));
        }
        return examples;
    }

    // Digits with an optional '-' only: long.TryParse alone would also take "+1", which JSON would not call an integer.
    static bool IsInteger(string s) => s.Length > 0 && s.Skip(s[0] == '-' ? 1 : 0).Any() && s.Skip(s[0] == '-' ? 1 : 0).All(char.IsAsciiDigit);

    static TextFileData Classify(List<RawExample> raw, string path)
    {
        string[] names;
        long[] labels;
        if (raw.All(e => e.Label.Integer is not null))
        {
            var negative = raw.FirstOrDefault(e => e.Label.Integer < 0);
            if (negative is not null)
                throw new InvalidDataException($"{path}:{negative.Line}: label {negative.Label.Integer} is negative; integer labels are classes 0, 1, 2, ...");
            var largest = raw.MaxBy(e => e.Label.Integer)!;
            // Integer labels are class indices, so the largest sets the number of classes; past this bound they are
            // almost surely ids written as numbers, and a class name per integer up to them would be allocated.
            if (largest.Label.Integer >= MaxIntegerClasses)
                throw new InvalidDataException(
                    $"{path}:{largest.Line}: label {largest.Label.Integer} would make {largest.Label.Integer + 1} classes (integer labels are classes 0..K-1, at most {MaxIntegerClasses}); write the labels as strings if they are names");
            labels = raw.Select(e => e.Label.Integer!.Value).ToArray();
            names = Enumerable.Range(0, (int)labels.Max() + 1).Select(k => $"class_{k}").ToArray();
        }
        else
        {
            names = raw.Select(e => e.Label.Text).Distinct().OrderBy(n => n, CodePointOrder.Instance).ToArray();
            var index = names.Select((n, k) => (n, k)).ToDictionary(p => p.n, p => (long)p.k, StringComparer.Ordinal);
            labels = raw.Select(e => index[e.Label.Text]).ToArray();
        }
        if (labels.Distinct().Count() < 2)
            throw new InvalidDataException($"{path}: all {raw.Count} examples have the label '{raw[0].Label.Text}'; a classifier needs at least two classes");
        return new TextFileData(raw.Select((e, i) => new LabelledText(e.Text, labels[i], e.Line)).ToArray(), names);
    }
}
