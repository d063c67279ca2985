// Package frametest holds fakes of the byte stream that CDP/1 (package
// device/frame) runs over, for tests of hosts, simulators and drivers:
//
//   - Pipe: an in-memory, buffered, full-duplex stream with read deadlines,
//     like a pty pair whose writes never block.
//   - Faults: a wrapper that drops, duplicates, corrupts, delays or
//     reorders chosen writes, or gives a frame a wrong SEQ or a bad CRC.
//   - Recorder and Playback: record the bytes written and read through a
//     real stream into a text transcript, and play one back strictly: a
//     write that differs from the transcript fails, and Close fails when
//     steps are left (STYLE.md §10).
//
// Transcript format, one step per line; blank lines and lines starting with
// '#' are comments:
//
//	> a5000001...   bytes written by the side that holds the stream
//	< a5000081...   bytes it read (one Read call)
//
// The package does not depend on device/frame; it moves bytes only.
package frametest
