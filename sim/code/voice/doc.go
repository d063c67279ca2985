// Package voice is the speech of the simulated audio code reader
// (kodeoplæser, DESIGN.md §1): recorded prompts for the digits 0 to 9 in
// Danish and English, and the synthesis that strings them into the words a
// reader says when its button is pressed (the PCM that CDP/1 AUDIO serves,
// DESIGN.md §4).
//
// It sits under sim/code, which calls Speak on every press of a simulated
// audio reader. It is pure computation on embedded data: no I/O.
//
// The prompts (da/*.wav, en/*.wav) were made once with espeak-ng and sox;
// README.md and generate.sh in this folder say exactly how. They are
// RIFF/WAVE files holding 16-bit mono PCM at 8000 Hz. DecodeWAV and
// WAV.Encode read and write that format (the canonical 44-byte header form
// of the Microsoft RIFF/WAVE "fmt " and "data" chunks, WAVE_FORMAT_PCM), so
// that a bench can also save what a reader said as a .wav file.
//
// Synthesis is deliberately simple and deterministic: the same code and
// Settings always give the same bytes. Speed is applied by linear
// interpolation resampling of the whole utterance, so faster speech also
// sounds higher (the pitch moves with the speed, like a tape played fast);
// volume scales every sample and clips at full scale.
package voice
