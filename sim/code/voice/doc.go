// Package voice is the speech of the simulated audio code reader
// (kodeoplæser): what a reader says when its button is
// pressed (the PCM that CDP/1 AUDIO serves, CDP/1 §4 in docs/cdp1.md), at the reader's
// language, speed, volume and repeat count (Settings), in one of several
// voices (Voice):
//
//   - the reader's own voice (DefaultVoice, Speak): the reference prompts
//     embedded in device/voice (voice.DefaultPrompts), made once with
//     espeak-ng and sox as device/voice/prompts/README.md says, strung
//     together with a 120 ms pause between digits and 600 ms between
//     repetitions. Sharing them means the default decoder
//     (voice.DefaultDecoder) compares speech with exactly what the
//     simulator says. Speed resamples the whole utterance, so faster
//     speech also sounds higher, like a tape played fast;
//   - prompts from a folder (NewPromptVoice with device/voice's
//     LoadPrompts): those learnt from another reader, or cut by hand,
//     spoken the same way from the set nearest the speed setting;
//   - an espeak-ng voice (Espeak, such as "en+f3" or "da+klatt"),
//     synthesised on every press as connected speech, the digits running
//     into each other unless a pause is asked for, the speed changing
//     the speaking rate at the same pitch: a reader with a speech
//     synthesiser, and a voice the decoder has not heard before it is
//     learnt (device/voice Learn).
//
// Volume scales every sample and clips at full scale. The same code and
// settings always give the same bytes (with one version of espeak-ng for
// Espeak).
//
// It sits under sim/code, which calls Voice.Say on every press of a
// simulated audio reader (code.Options.Voice). It is computation on
// embedded data, except Espeak, which runs the espeak-ng program.
package voice
