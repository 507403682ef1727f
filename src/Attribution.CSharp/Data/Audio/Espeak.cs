using System.ComponentModel;
using System.Diagnostics;

namespace Attribution.Data.Audio;

/// <summary>How one word is spoken: an espeak-ng voice (e.g. <c>en-us+f3</c>), speed in words per minute, pitch 0-99, amplitude 0-200.</summary>
public sealed record SpeechSettings(string Word, string Voice, int WordsPerMinute, int Pitch, int Amplitude);

/// <summary>
/// Runs Debian's espeak-ng (one process per utterance, several at once) and parses the WAVE it writes to
/// standard output. The program is started directly with an argument list, never through a shell.
/// </summary>
public sealed class Espeak
{
    /// <summary>The program name or path; <c>espeak-ng</c> is looked up on PATH.</summary>
    public string Program { get; }

    public Espeak(string program = "espeak-ng")
    {
        if (string.IsNullOrWhiteSpace(program)) throw new ArgumentException("Espeak: the program name is empty", nameof(program));
        Program = program;
    }

    /// <summary>The version line (<c>espeak-ng --version</c>), part of the synthesis cache key: another version speaks differently.</summary>
    /// <exception cref="DataNotFoundException">The program is not installed.</exception>
    public string Version() => System.Text.Encoding.UTF8.GetString(Run(["--version"], "--version")).Trim();

    /// <summary>The utterance as a waveform at espeak-ng's own rate (22050 Hz).</summary>
    /// <exception cref="DataNotFoundException">The program is not installed.</exception>
    /// <exception cref="InvalidOperationException">espeak-ng failed (unknown voice, ...); the message has its error output.</exception>
    public Waveform Speak(SpeechSettings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        var bytes = Run(["-v", s.Voice, "-s", s.WordsPerMinute.ToString(), "-p", s.Pitch.ToString(), "-a", s.Amplitude.ToString(), "--stdout", s.Word], s.ToString());
        return WavFile.Parse(bytes, $"espeak-ng output for {s}");
    }

    /// <summary>
    /// Speaks every item with up to <paramref name="parallelism"/> processes at once; results are in the order of
    /// <paramref name="items"/> whatever the completion order. <paramref name="then"/> (e.g. resampling) runs on each waveform in the
    /// same worker; <paramref name="progress"/> gets (done, total) as items finish.
    /// </summary>
    public Waveform[] SpeakAll(IReadOnlyList<SpeechSettings> items, int parallelism = 2, Func<Waveform, Waveform>? then = null, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (parallelism < 1) throw new ArgumentOutOfRangeException(nameof(parallelism), parallelism, "at least one process");
        var results = new Waveform[items.Count];
        int done = 0;
        var report = new object();
        Parallel.For(0, items.Count, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, i =>
        {
            var wave = Speak(items[i]);
            results[i] = then is null ? wave : then(wave);
            int d = Interlocked.Increment(ref done);
            if (progress is not null) lock (report) progress(d, items.Count);
        });
        return results;
    }

    byte[] Run(IEnumerable<string> arguments, string what)
    {
        var info = new ProcessStartInfo(Program)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, CreateNoWindow = true,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(info) ?? throw DataNotFoundException.MissingProgram(Program, "espeak-ng");
        }
        catch (Win32Exception)
        {
            throw DataNotFoundException.MissingProgram(Program, "espeak-ng");
        }
        using (process)
        {
            // Read stderr concurrently: a full stderr pipe would block the process while we wait on stdout.
            var error = process.StandardError.ReadToEndAsync();
            using var buffer = new MemoryStream();
            process.StandardOutput.BaseStream.CopyTo(buffer);
            process.WaitForExit();
            if (process.ExitCode != 0 || buffer.Length == 0)
                throw new InvalidOperationException($"espeak-ng failed for {what} (exit code {process.ExitCode}): {error.Result.Trim()}");
            return buffer.ToArray();
        }
    }
}
