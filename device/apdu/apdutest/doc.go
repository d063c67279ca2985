// Package apdutest has record and playback fakes of an apdu.Transmitter, for
// tests of anything that talks APDUs (device/apdu, driver/pcsc, simulators).
//
// A Recorder sits in front of a real (or simulated) Transmitter and keeps
// every command and response; a test writes its Transcript to testdata/ when
// run with -update. A Playback answers from such a transcript and is strict:
// an unexpected command fails with the expected and the actual bytes, and
// Close fails while steps remain.
//
// Transcripts are text, one APDU per line, hex, commands after "> " and
// responses after "< ":
//
//	# SELECT the FIDO applet
//	> 00a4040008a0000006472f000100
//	< 4649444f5f325f309000
//
// Blank lines and lines starting with # are ignored; spaces inside the hex
// are allowed.
package apdutest
