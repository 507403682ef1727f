using static TorchSharp.torch;

namespace Attribution.Data;

/// <summary>How a labelled text corpus becomes tensors: split, vocabulary and sequence length. Part of a trained text model's identity.</summary>
/// <param name="MaxLength">Tokens per text after truncation / padding.</param>
/// <param name="MinCount">A training-split word enters the vocabulary when it occurs at least this often.</param>
/// <param name="MaxVocabulary">Vocabulary size including &lt;pad&gt; and &lt;unk&gt;.</param>
/// <param name="TestFraction">Share of each class held out for testing.</param>
/// <param name="Seed">Seed of the split.</param>
public sealed record TextDataOptions(int MaxLength = 256, int MinCount = 2, int MaxVocabulary = 20000, double TestFraction = 0.2, long Seed = 0);

/// <summary>
/// The two parts of a split corpus, sharing one vocabulary (built from <see cref="Train"/>), and the one way every text
/// source (the SpamAssassin corpus, a user's text file) is split and encoded. Disposing it disposes both parts.
/// </summary>
public sealed record TextSplit(TextDataset Train, TextDataset Test) : IDisposable
{
    /// <summary>
    /// A stratified split of <paramref name="texts"/> (<see cref="Stratified"/>), a vocabulary built from the
    /// training texts only (a test word must look unknown exactly as a new text's would), and both parts encoded with it.
    /// </summary>
    /// <param name="texts">The raw texts, tokenized here with <see cref="Tokenizer.Tokenize"/>.</param>
    /// <param name="labels">One label per text, an index into <paramref name="classNames"/>.</param>
    /// <param name="classNames">The class names in label order.</param>
    /// <param name="options">Split, vocabulary and sequence length.</param>
    public static TextSplit Encode(IReadOnlyList<string> texts, IReadOnlyList<long> labels, IReadOnlyList<string> classNames, TextDataOptions options)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(options);
        if (texts.Count != labels.Count) throw new ArgumentException($"{texts.Count} texts but {labels.Count} labels", nameof(labels));
        var (trainIndex, testIndex) = Stratified(labels, options.TestFraction, options.Seed);
        var tokens = texts.Select(Tokenizer.Tokenize).ToArray();
        var vocabulary = Vocabulary.Build(trainIndex.Select(i => tokens[i]), options.MinCount, options.MaxVocabulary);
        TextDataset Part(int[] index) =>
            TextDataset.Encode(index.Select(i => tokens[i]).ToArray(), index.Select(i => labels[i]).ToArray(), vocabulary, classNames, options.MaxLength);
        return new TextSplit(Part(trainIndex), Part(testIndex));
    }

    /// <summary>
    /// A stratified split: in each class, a random round(n_c * testFraction) of the indices go to the test
    /// set. Each class draws its permutation from a generator seeded from (seed, "split/{class}"), so the
    /// same seed gives the same split. Both index lists are ascending.
    /// </summary>
    public static (int[] Train, int[] Test) Stratified(IReadOnlyList<long> labels, double testFraction, long seed)
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

    public void Dispose()
    {
        Train.Dispose();
        Test.Dispose();
    }
}
