// Package voice is the speech of the simulated audio code reader
// (kodeoplæser): the synthesis that strings recorded prompts
// of the digits 0 to 9, in Danish or English, into the words a reader says
// when its button is pressed (the PCM that CDP/1 AUDIO serves, CDP/1
// §4 in docs/cdp1.md), at the reader's speed, volume and repeat count (Settings).
//
// It sits under sim/code, which calls Speak on every press of a simulated
// audio reader. It is pure computation on embedded data: no I/O.
//
// The prompts are not kept here: they are the reference prompts embedded
// in device/voice (device/voice/prompts/da, .../en; voice.DefaultPrompts),
// made once with espeak-ng and sox as device/voice/prompts/README.md and
// generate.sh say, RIFF/WAVE files of 16-bit mono PCM at 8000 Hz. Sharing
// them means the default decoder (voice.DefaultDecoder) compares speech
// with exactly what the simulator says. device/voice also reads and writes
// WAV files (ParseWAV, EncodeWAV), for a bench that saves what a reader
// said.
//
// Synthesis is deliberately simple and deterministic: the same code and
// Settings always give the same bytes. Speed is applied by linear
// interpolation resampling of the whole utterance, so faster speech also
// sounds higher (the pitch moves with the speed, like a tape played fast);
// volume scales every sample and clips at full scale.
package voice
