using System.Text;

namespace Attribution.Data;

/// <summary>One record of a CSV file: its fields and the line it starts on (1-based; a quoted field may span lines).</summary>
internal sealed record CsvRecord(IReadOnlyList<string> Fields, int Line);

/// <summary>
/// Splits CSV text into records as RFC 4180 defines them: fields separated by commas, records by line breaks (CRLF or
/// LF); a field in double quotes may hold commas, line breaks and quotes written twice (<c>""</c>). A quote inside an
/// unquoted field is kept as a character, as Python's csv module does. Blank lines are skipped (there is no record on
/// them, and a file usually ends with one).
/// </summary>
internal static class CsvRecords
{
    /// <exception cref="InvalidDataException">A quoted field is not closed, or text follows a closing quote; the message names <paramref name="path"/> and the line.</exception>
    public static List<CsvRecord> Parse(string text, string path)
    {
        var records = new List<CsvRecord>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, recordLine = 1, i = 0;
        bool quoted = false;        // the current field began with a quote (and may end only at a closing one)
        bool afterClosing = false;  // the current quoted field has been closed

        void EndField()
        {
            fields.Add(field.ToString());
            field.Clear();
            quoted = afterClosing = false;
        }
        void EndRecord()
        {
            EndField();
            // A blank line reads as one empty field; it is not a record.
            if (fields.Count > 1 || fields[0].Length > 0) records.Add(new CsvRecord(fields.ToArray(), recordLine));
            fields.Clear();
            recordLine = line;
        }

        int quoteLine = 0;
        while (i < text.Length)
        {
            char c = text[i];
            if (quoted && !afterClosing)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                    afterClosing = true;
                }
                else
                {
                    if (c == '\n') line++;
                    field.Append(c);
                }
                i++;
                continue;
            }
            if (c == ',') EndField();
            else if (c == '\n' || c == '\r')
            {
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                line++;
                EndRecord();
            }
            else if (afterClosing)
                throw new InvalidDataException($"{path}:{line}: '{c}' after the closing quote of a field; a quoted field ends at its closing quote, and a quote inside it is written twice (\"\")");
            else if (c == '"' && field.Length == 0 && !quoted) { quoted = true; quoteLine = line; }
            else field.Append(c);
            i++;
        }
        if (quoted && !afterClosing)
            throw new InvalidDataException($"{path}:{quoteLine}: a quoted field opened on this line is never closed; a quote inside a field is written twice (\"\")");
        if (fields.Count > 0 || field.Length > 0 || quoted) EndRecord();
        return records;
    }
}
