// Package ctaphidtest holds fakes for CTAPHID report transports
// (CTAP 2.1 §11.2): a Recorder that writes down every report crossing a real
// transport, a strict Playback that replays such a transcript to a host, and
// Faulty, a wrapper that drops, duplicates, corrupts, delays, reorders or
// misaddresses chosen reports. Simulators and driver tests use them on top of
// the in-memory transports of package ctaphid.
//
// A transcript is text, one report per line: "> " and the report in hex for a
// report written to the transport (host to device), "< " and hex for a report
// read from it (device to host). Blank lines and lines starting with "#" are
// comments. Transcripts live in the repository's testdata/ctaphid directory
// and are refreshed by the tests that own them when run with -update.
package ctaphidtest
