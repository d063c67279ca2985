// Package voice reads what an audio code reader (kodeoplæser)
// says: it decodes the spoken digits of a one-time code from the PCM that
// CDP/1 AUDIO returns (CDP/1 §4, docs/cdp1.md), learns the voice of any reader from
// the reader itself, and reads and writes that PCM as WAV files, so that a
// test bench can check a reader and keep what it said.
//
// Where it sits: driver/serial fetches the audio of a PRESS and calls
// Decoder.Check, the one test of spoken digits in the tree (the
// conformance suite of device/devicetest and `authbench check` use it
// too), to compare what the reader said with the code it reported. Learn
// presses a reader (through a small Reader interface that driver/serial's
// CodeDevice meets) and builds its prompts; `authbench voice learn` writes
// them to a folder that LoadPrompts reads back. The package is pure
// computation: no I/O except through the interfaces, io.Reader, io.Writer
// and fs.FS it is given.
//
// # Prompts
//
// A Decoder compares speech with Prompts: examples of the ten digits as
// one reader says them, in sets of one language and speed setting each.
// The package embeds one example of each digit in Danish and English as
// the simulated reader of sim/code says them (DefaultPrompts,
// DefaultDecoder). A real reader's prompts are learnt from it: Learn sets
// the reader to each language and speed asked for (CDP/1 SETTINGS),
// presses it for new codes (one per time step, waiting as PRESS's seconds
// left say) until every digit has been heard often enough, and hands each
// recording with its reported code to a Calibrator. The Calibrator knows
// which words a recording holds, so only where each begins and ends is to
// be found: by forced alignment with the decoder's own DP, first against
// the embedded prompts (another voice, but near enough to place the words
// roughly), then four times over against the words found in the reader's
// other recordings. Recordings that fit the others poorly are set aside.
// Each digit keeps up to eight examples that best cover how the reader
// says it (greedy k-medoids on the DTW distance), and the quietest frames
// of the recordings are kept as the set's background. Prompts.Files writes
// them as a folder: manifest.json (format, sample rate, the reader's
// serial, model and firmware, when, and per set its language, speed,
// volume, codes heard and examples per digit), LANG-SPEED/D-N.wav and
// LANG-SPEED/noise.wav; LoadPrompts also reads hand-cut folders
// (LANG/0.wav to 9.wav, as prompts/ holds the embedded ones).
//
// # Decoding
//
// The recording and the examples are compared as powers in 18 mel-spaced
// bands from 100 to 3800 Hz (a 32 ms Hann window every 10 ms, any sample
// rate from 1 to 384 kHz brought to 8 kHz by a windowed-sinc filter, so a
// 16 or 44.1 kHz sound card recording is fine). The background of the
// recording is the median of each band over its quietest 15 % of frames
// (pauses if there are any, the weakest sounds otherwise), and it is
// never taken below 50 dB under the loudest band. Both sides are
// compared in dB, floored 3 dB above the louder of the recording's
// background and the examples' (so that what noise hides counts for
// neither, and white, pink or mains-hum noise and a line-out's hiss cost
// little), with the examples brought to the recording's level (any
// volume) and the recording's background added to them.
//
// Connected-word dynamic time warping (one-pass DP: Bridle, Brown and
// Chamberlain, ICASSP 1982; Ney, IEEE Trans. ASSP 32(2), 1984) then finds
// the sequence of examples and pauses that fits the whole recording best.
// A word may start right where the last one ended, so digits said in one
// breath without a pause between them ("nine two nine") are found as
// well as digits with pauses, and each word is matched at half to twice
// its example's speed. Which set fits, and how much faster or slower the
// reader speaks than the set was learnt, is searched first on the first
// 2.5 s: every set resampled over 50 to 200 % of its speed (the pitch and
// formants move with the speed, as when a recording is played faster) on
// a coarse grid at 20 ms frames, then in finer steps at 10 ms; when the
// words of the best fit are then more than 12 % longer or shorter than
// the examples, the examples are time-stretched to that speed at the same
// pitch (a reader that synthesises or stretches its speech) and kept if
// they fit better. Repetitions of a code are split after each Digits
// words when the code length is known (Check), otherwise at long pauses.
//
// # What is refused
//
// Decode does not guess: a word is a '?', and the whole decode fails with
// a *DecodeError, when
//   - it is farther than Options.MaxDistance (4 dB per frame) from every
//     example: noise, a tone, a damaged word, another voice or language;
//   - another digit, or no word at all, fits the same stretch of the
//     recording less than Options.MinMargin (0.3 dB per frame) and
//     Options.MinRatio (1.2 times) worse: a word between two digits;
//   - it is much shorter than the shortest example of its digit (under
//     60 %: a word cut short) or longer than 1.8 times the longest (two
//     words run together).
//
// The decode also fails when a loud sound (within 20 dB of the speech and
// 10 dB above the background, 30 ms or longer) lies outside every word
// (a word lost in a burst of noise, a word cut off), when the recording is
// silent or no sound stands 12 dB above its background, and, with the
// code length known, when the words are not a whole number of codes.
//
// What that means in practice, measured (voices_test.go): espeak-ng voices
// the decoder had not heard (en+f3, en+m3, da+m3, da+klatt, en-us), each
// speaking connected and with 120 ms pauses at speeds 80, 100 and 125 %,
// were learnt from 20 codes each with white noise 20 dB below the speech,
// then asked for other codes clean and with white, pink and mains-hum
// noise 20 and 15 dB below: no code was decoded wrong, and 98.7 to 100 %
// were right in every condition (the table, and the command that makes
// it, are in TestUnseenVoices). Down to 5 dB no code was wrong either,
// with about a quarter refused. A set learnt at 100 % also decodes
// time-stretched speech at 70 to 140 % (some refused at 70 %). Refused:
// a voice or a language the prompts were not learnt from (in the tests,
// Danish prompts refuse English speech; the simulator's own prompts decode
// some espeak-ng voices and refuse others), speeds outside 50 to 200 % of
// a set, noise louder than about 5 dB below the speech, recordings longer
// than Options.MaxDuration or with more than 256 words.
//
// # WAV
//
// ParseWAV, EncodeWAV, ReadWAV and WriteWAV handle the RIFF/WAVE form of
// Microsoft/IBM "Multimedia Programming Interface and Data Specifications
// 1.0" (1991), section 3 (RIFF chunks, with pad bytes after chunks of odd
// length) and the WAVE form's "fmt " chunk for WAVE_FORMAT_PCM
// (wFormatTag 1, nChannels, nSamplesPerSec, nAvgBytesPerSec, nBlockAlign,
// wBitsPerSample) and "data" chunk. Only 16-bit mono PCM is accepted, and
// parsing is strict (see ParseWAV); EncodeWAV writes the canonical 44-byte
// header form.
package voice
