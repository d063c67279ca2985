// Package voice reads what an audio code reader (kodeoplæser)
// says: it decodes the spoken digits of a one-time code from the PCM that
// CDP/1 AUDIO returns (CDP/1 §4, docs/cdp1.md), and reads and writes that PCM as WAV
// files, so that a test bench can check a reader and keep what it said.
//
// Where it sits: driver/serial fetches the audio of a PRESS and calls
// Decoder.DecodeAudio to compare the spoken digits with the code the device
// reported; benches save recordings with WriteWAV. The package is pure
// computation: no I/O except through the io.Reader, io.Writer and fs.FS it
// is given, and no dependency on a particular reader. The reference
// recordings of the ten digits in each language are data (Prompts): the
// package embeds those of the simulated reader (prompts/da, prompts/en;
// DefaultPrompts, DefaultDecoder), which sim/code/voice also speaks from,
// and LoadPrompts reads others, so that with its own prompts the same
// decoder serves a real reader.
//
// WAV (ParseWAV, EncodeWAV, ReadWAV, WriteWAV): the RIFF/WAVE form of
// Microsoft/IBM "Multimedia Programming Interface and Data Specifications
// 1.0" (1991), section 3 (RIFF chunks, with pad bytes after chunks of odd
// length) and the WAVE form's "fmt " chunk for WAVE_FORMAT_PCM
// (wFormatTag 1, nChannels, nSamplesPerSec, nAvgBytesPerSec, nBlockAlign,
// wBitsPerSample) and "data" chunk. Only 16-bit mono PCM is accepted, and
// parsing is strict (see ParseWAV); EncodeWAV writes the canonical 44-byte
// header form.
//
// Decoding (Decoder): template matching against the prompts, in the
// manner of isolated-word recognisers. Words are runs of sound between
// pauses, found on the energy envelope relative to the background level.
// The speed (50–200 %, which scales duration and pitch together, as
// resampling does) and the language are those at which the prompts fit the
// first words best. Each word is then compared with every prompt played at
// that speed: log energies in 14 mel-spaced bands every 5 ms, the prompt
// slid over the word, scaled to its level and given the recording's
// background noise, and the mean difference at the best position is the
// distance. A word must be near one prompt and clearly farther from all
// the others, or Decode fails rather than guess: a damaged recording gives
// an error, not a wrong code.
//
// Measured on the simulator's speech (decoder_test.go): all 360 digits of
// 36 recordings right, both languages, speeds 50/100/200 %, volumes
// 10/50/100 %, clean and with white noise 20 dB below the speech; every
// recording damaged as sim/code's CorruptAudio does, with a digit replaced
// by noise or a tone, or cut short, is refused. Random codes at random
// speeds and volumes were all decoded clean, at 20 dB and at 15 dB; at
// 10 dB about a quarter are refused and a few Danish "tre" are heard as
// "seks": the decoder is meant for noise at least 15 dB below the speech.
package voice
