using System.Buffers.Binary;
using System.Text;

namespace Attribution.Data.Audio;

/// <summary>A mono waveform in [-1, 1] and its sample rate.</summary>
public sealed record Waveform(float[] Samples, int SampleRate)
{
    /// <summary>Length in seconds.</summary>
    public double Seconds => (double)Samples.Length / SampleRate;
}

/// <summary>
/// Reads RIFF/WAVE files with integer PCM (8, 16, 24, 32 bit) or IEEE float (32 bit) samples; several
/// channels are averaged to mono. A data chunk whose declared size runs past the end of the bytes is read
/// up to the end: espeak-ng writing to a pipe cannot seek back to fill in the sizes, so it declares
/// 0x7ffff000 bytes, and such streams are the main input here.
/// </summary>
public static class WavFile
{
    /// <exception cref="InvalidDataException">The bytes are not a WAVE file this reader supports; the message says which rule failed.</exception>
    public static Waveform Parse(ReadOnlySpan<byte> bytes, string source = "WAV data")
    {
        if (bytes.Length < 12 || !Tag(bytes, 0, "RIFF") || !Tag(bytes, 8, "WAVE"))
            throw new InvalidDataException($"{source}: not a RIFF/WAVE file (the first 12 bytes must be 'RIFF', a size, 'WAVE'; got {bytes.Length} bytes).");
        int position = 12;
        int format = 0, channels = 0, rate = 0, bits = 0;
        while (position + 8 <= bytes.Length)
        {
            uint declared = BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(position + 4, 4));
            int start = position + 8;
            int size = (int)Math.Min(declared, (uint)(bytes.Length - start));
            if (Tag(bytes, position, "fmt "))
            {
                if (size < 16) throw new InvalidDataException($"{source}: the 'fmt ' chunk has {size} bytes, at least 16 are needed.");
                var fmt = bytes.Slice(start, size);
                format = BinaryPrimitives.ReadUInt16LittleEndian(fmt);
                channels = BinaryPrimitives.ReadUInt16LittleEndian(fmt[2..]);
                rate = BinaryPrimitives.ReadInt32LittleEndian(fmt[4..]);
                bits = BinaryPrimitives.ReadUInt16LittleEndian(fmt[14..]);
                // WAVE_FORMAT_EXTENSIBLE keeps the real format code in the first two bytes of the sub-format GUID.
                if (format == 0xFFFE && size >= 26) format = BinaryPrimitives.ReadUInt16LittleEndian(fmt[24..]);
            }
            else if (Tag(bytes, position, "data"))
            {
                if (channels == 0) throw new InvalidDataException($"{source}: the 'data' chunk comes before any 'fmt ' chunk.");
                return new Waveform(Decode(bytes.Slice(start, size), format, channels, bits, source), rate);
            }
            // Chunks are padded to an even number of bytes.
            position = start + size + (size & 1);
        }
        throw new InvalidDataException($"{source}: no 'data' chunk found.");
    }

    static float[] Decode(ReadOnlySpan<byte> data, int format, int channels, int bits, string source)
    {
        int width = bits / 8;
        if (!(format == 1 && bits is 8 or 16 or 24 or 32) && !(format == 3 && bits == 32))
            throw new InvalidDataException($"{source}: unsupported sample format (format code {format}, {bits} bits); supported: PCM 8/16/24/32 bit, IEEE float 32 bit.");
        int frames = data.Length / (width * channels);
        var samples = new float[frames];
        for (int f = 0; f < frames; f++)
        {
            double sum = 0;
            for (int c = 0; c < channels; c++)
            {
                var s = data.Slice((f * channels + c) * width, width);
                sum += (format, bits) switch
                {
                    (3, _) => BinaryPrimitives.ReadSingleLittleEndian(s),
                    (_, 8) => (s[0] - 128) / 128.0,                      // 8-bit PCM is unsigned
                    (_, 16) => BinaryPrimitives.ReadInt16LittleEndian(s) / 32768.0,
                    (_, 24) => ((s[0] | s[1] << 8 | s[2] << 16) << 8 >> 8) / 8388608.0,
                    _ => BinaryPrimitives.ReadInt32LittleEndian(s) / 2147483648.0,
                };
            }
            samples[f] = (float)(sum / channels);
        }
        return samples;
    }

    /// <summary>16-bit PCM mono WAVE bytes of <paramref name="samples"/> (clipped to [-1, 1]); for tests and exports.</summary>
    public static byte[] Encode16(float[] samples, int sampleRate)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var bytes = new byte[44 + 2 * samples.Length];
        Encoding.ASCII.GetBytes("RIFF").CopyTo(bytes, 0);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), 36 + 2 * samples.Length);
        Encoding.ASCII.GetBytes("WAVEfmt ").CopyTo(bytes, 8);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(16), 16);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(20), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(22), 1);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(24), sampleRate);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(28), 2 * sampleRate);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(32), 2);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(34), 16);
        Encoding.ASCII.GetBytes("data").CopyTo(bytes, 36);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(40), 2 * samples.Length);
        for (int i = 0; i < samples.Length; i++)
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(44 + 2 * i), (short)Math.Round(Math.Clamp(samples[i], -1f, 1f) * 32767));
        return bytes;
    }

    static bool Tag(ReadOnlySpan<byte> bytes, int at, string tag) =>
        at + 4 <= bytes.Length && bytes[at] == tag[0] && bytes[at + 1] == tag[1] && bytes[at + 2] == tag[2] && bytes[at + 3] == tag[3];
}
