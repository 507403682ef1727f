/// WAV parsing, resampling, espeak-ng synthesis, clip mixing and the audio dataset.
module AudioDataTests

open System
open System.IO
open System.Diagnostics
open Expecto
open TorchSharp
open type TorchSharp.torch
open Microsoft.FSharp.Core.Operators
open Attribution.Data
open Attribution.Data.Audio

let private sine (rate: int) (hz: float) (amplitude: float) (n: int) =
    Array.init n (fun i -> float32 (amplitude * sin (2.0 * Math.PI * hz * float i / float rate)))

let private rms (x: float32[]) = sqrt (x |> Array.averageBy (fun v -> float v * float v))

/// Whether espeak-ng runs here; the synthesis tests say why they skip when it does not.
let private espeakInstalled =
    lazy (try (Espeak().Version() |> ignore; true) with :? DataNotFoundException -> false)

let private needEspeak () =
    if not espeakInstalled.Value then skiptest "espeak-ng is not installed (sudo apt-get install espeak-ng); synthesis tests skipped"

/// Two words, four speakers (one held out), three utterances a word: about a second of espeak-ng on one core.
let private smallWith seed =
    SpeechSynthesisOptions(UtterancesPerWord = 3, Words = [| "right"; "cat" |], Voices = [| "en-us"; "en-gb" |],
                           Variants = [| "m1"; "f2" |], TestSpeakerFraction = 0.25, Seed = seed)

let private small = smallWith 7L

/// Element-wise equality of two tensors of the same shape.
let private same (a: Tensor) (b: Tensor) = a.shape = b.shape && a.eq(b).all().ToBoolean()

[<Tests>]
let tests =
    testList "audio data" [
        test "WAV: 16-bit PCM round-trips, and a piped stream's oversized data size is read to the end of the bytes" {
            let x = sine 22050 440.0 0.5 1000
            let bytes = WavFile.Encode16(x, 22050)
            let w = WavFile.Parse(bytes)
            Expect.equal w.SampleRate 22050 "rate"
            Expect.equal w.Samples.Length 1000 "length"
            for i in 0 .. 999 do Expect.isLessThan (abs (w.Samples.[i] - x.[i])) (1.0f / 32767.0f) $"sample {i}"
            // espeak-ng --stdout declares 0x7ffff000 data bytes (and a matching RIFF size) because a pipe cannot seek.
            BitConverter.GetBytes(0x7ffff000).CopyTo(bytes, 40)
            BitConverter.GetBytes(0x7ffff024).CopyTo(bytes, 4)
            Expect.equal (WavFile.Parse(bytes).Samples.Length) 1000 "reads to the end"
            Expect.throwsT<InvalidDataException> (fun () -> WavFile.Parse(Array.zeroCreate<byte> 20) |> ignore) "not RIFF"
        }

        test "resampling 22050 -> 16000 Hz keeps a 1 kHz sine's frequency, amplitude and phase (max error < 1e-3 away from the ends)" {
            let x = sine 22050 1000.0 0.5 22050
            let r = SincResampler(22050, 16000)
            let y = r.Resample(ReadOnlySpan<float32>(x))
            Expect.equal y.Length 16000 "floor(n * 16000 / 22050)"
            let expected = sine 16000 1000.0 0.5 16000
            let margin = 200
            let worst = [ margin .. 16000 - margin - 1 ] |> List.map (fun i -> abs (float y.[i] - float expected.[i])) |> List.max
            Expect.isLessThan worst 1e-3 "interior matches sin(2 pi 1000 t) at the new sample times"
        }

        test "resampling 22050 -> 16000 Hz suppresses content above the new Nyquist frequency: a 9 kHz sine comes out below -60 dB" {
            let x = sine 22050 9000.0 0.5 22050
            let y = SincResampler(22050, 16000).Resample(ReadOnlySpan<float32>(x))
            let interior = y.[200 .. y.Length - 201]
            Expect.isLessThan (rms interior / rms x) 1e-3 "no alias at 16000 - 9000 = 7 kHz"
            // and something just inside the pass band survives, so the filter is not simply muting everything
            let pass = SincResampler(22050, 16000).Resample(ReadOnlySpan<float32>(sine 22050 6000.0 0.5 22050))
            Expect.floatClose Accuracy.low (rms pass.[200 .. pass.Length - 201]) (0.5 / sqrt 2.0) "6 kHz passes"
        }

        test "a missing espeak-ng is a DataNotFoundException that says how to install it" {
            let e = Expect.throwsC (fun () -> Espeak("/nonexistent/espeak-ng").Version() |> ignore) id
            Expect.isTrue (e :? DataNotFoundException) $"type {e.GetType().Name}"
            Expect.stringContains e.Message "sudo apt-get install espeak-ng" "install command"
        }

        test "speakers are split before utterances are drawn: train and test speakers are disjoint, and the plan is seeded" {
            let test = SpeechCommandsSynth.TestSpeakers(small)
            Expect.equal test.Count 1 "round(0.25 * 4)"
            let plan = SpeechCommandsSynth.Plan(small)
            Expect.equal plan.Count 6 "2 words x 3"
            Expect.sequenceEqual plan (SpeechCommandsSynth.Plan(small)) "same options, same plan"
            Expect.isFalse (Seq.forall2 (=) plan (SpeechCommandsSynth.Plan(smallWith 8L))) "another seed, another plan"
        }

        test "synthesis: [N, 1, 16000] clips in [-1, 1] with the words' labels; the second load comes from the cache; same seed, same clips" {
            needEspeak ()
            let folder = TestFiles.freshDir "speech"
            let first = SpeechCommandsSynth.Synthesise(folder, small)
            Expect.equal first.Count 6 "utterances"
            Expect.equal (Directory.GetFiles(folder, "*.safetensors").Length) 1 "one cache file"
            for i in 0 .. first.Count - 1 do
                let u = first.Utterance(i).ToArray()
                let seconds = float u.Length / 16000.0
                Expect.isTrue (seconds > 0.1 && seconds < 1.5) $"utterance {i} lasts {seconds} s"
                Expect.isGreaterThan (u |> Array.map abs |> Array.max) 0.05f $"utterance {i} is audible"
            let clock = Stopwatch.StartNew()
            let second = SpeechCommandsSynth.Synthesise(folder, small, Espeak())
            Expect.isLessThan clock.Elapsed.TotalSeconds 0.5 "cached load"
            Expect.sequenceEqual second.Samples first.Samples "cached samples"
            Expect.sequenceEqual second.Labels first.Labels "cached labels"
            let struct (train, testSet) = SpeechCommandsSynth.Split(first, ClipOptions(Seed = 3L))
            use train = train
            use testSet = testSet
            Expect.equal (train.Count + testSet.Count) 6 "every utterance in one split"
            Expect.equal train.Waveforms.shape [| int64 train.Count; 1L; 16000L |] "[N, 1, 16000]"
            Expect.isTrue (train.Waveforms.abs().max().ToSingle() <= 1.0f) "in [-1, 1]"
            Expect.sequenceEqual train.ClassNames [ "right"; "cat" ] "class names"
            let held = SpeechCommandsSynth.TestSpeakers(small)
            Expect.isTrue (train.Speakers |> Seq.forall (held.Contains >> not)) "no test speaker in training"
            Expect.isTrue (testSet.Speakers |> Seq.forall held.Contains) "only test speakers in test"
            let struct (again, againTest) = SpeechCommandsSynth.Split(second, ClipOptions(Seed = 3L))
            use again = again
            use againTest = againTest
            Expect.isTrue (same (again.Waveforms) (train.Waveforms)) "same seed, same clips"
            let struct (other, otherTest) = SpeechCommandsSynth.Split(second, ClipOptions(Seed = 4L))
            use other = other
            use otherTest = otherTest
            Expect.isFalse (same (other.Waveforms) (train.Waveforms)) "another clip seed, other placement and noise"
            use images = train.AsImages()
            Expect.equal images.Images.shape [| int64 train.Count; 1L; 1L; 16000L |] "image view [N, 1, 1, T]"
        }

        test "a clip holds the utterance at its SNR: with the noise removed (SNR 200 dB) the clip is the utterance, shifted" {
            let u = sine 16000 300.0 0.1 4000
            let clip = ClipMixer.Mix(ReadOnlySpan<float32>(u), 16000, ClipOptions(MinSnrDb = 200.0, MaxSnrDb = 200.0), "k")
            let start = clip |> Array.findIndex (fun v -> abs v > 1e-6f)
            for i in 1 .. 3999 do Expect.floatClose Accuracy.medium (float clip.[start - 1 + i]) (float u.[i]) $"sample {i}"
            let noisy = ClipMixer.Mix(ReadOnlySpan<float32>(u), 16000, ClipOptions(MinSnrDb = 0.0, MaxSnrDb = 0.0), "k")
            // Same key, same offset and noise shape: the difference is the noise, whose power over the clip equals the
            // utterance's over its samples (0 dB); at amplitude 0.1 nothing reaches the [-1, 1] clipping.
            let noise = noisy |> Array.mapi (fun i v -> v - clip.[i])
            Expect.floatClose { absolute = 0.0; relative = 1e-4 } (rms noise) (rms u) "noise power = speech power at 0 dB"
        }
    ]
