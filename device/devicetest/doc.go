// Package devicetest holds the conformance suites of authbench: named checks
// that run against anything implementing the device interfaces, so that one
// suite serves a simulator in-process, the same simulator behind a real
// transport (CTAPHID, ISO 7816 through pcscd, a pty), and hardware on a QA
// bench (STYLE.md §8, "one conformance suite, many targets").
//
// Where it sits: above the device vocabulary and the protocol packages
// (device/ctap2, device/u2f, device/frame, device/otp), below its users:
// driver and simulator tests call RunT, and `authbench check` calls
// RunSuite and files the report. It does no I/O of its own apart from what
// the target does, and writing artifacts and reports where it is told to.
//
// The pieces:
//   - Check, Suite, Run and RunSuite: checks are functions with a name, a
//     description and the spec rule they test; RunSuite runs them one by
//     one, each under a deadline, recovers panics, and returns a Report of
//     pass, fail, error (could not run), not checked or skip per check,
//     with a message written for a bench operator ("sign counter did not
//     increase: 5 then 5"), notes and artifacts (such as the WAV of what an
//     audio code reader said). A device that goes away or stops answering
//     stops the run once ("card removed during makeCredential; remaining
//     checks not run"). RunT runs the same checks as subtests.
//   - ChipSuite: FIDO chips (device.Chip), from CTAP 2.1 §6.1 to §6.9 and
//     §8 (canonical CBOR, status codes), WebAuthn §6.1 (authenticator data)
//     and §8.2 (packed attestation, with the chain checked against
//     configured roots), §11.2 and §11.3 (long messages over HID and
//     chained APDUs, cancel), and FIDO U2F Raw Message Formats §4 and §5.
//   - CodeDeviceSuite: code displays and audio code readers
//     (device.CodeDevice) speaking CDP/1 (docs/cdp1.md): IDENTIFY, RFC 6238
//     §4 codes against the device clock, one code per press, the
//     repeated-SEQ cache, resynchronisation after noise and bad CRCs, the
//     factory commands after SEAL, and the speech of audio readers.
//   - WriteJUnit, WriteMarkdown and WriteHTML (and ReportOptions, for
//     links relative to where a report is written): reports for CI (valid
//     under the Jenkins JUnit schema, testdata/junit), for a ticket and for
//     a person, each naming the device (serial, AAGUID, firmware) and the
//     documents its checks cite.
//
// Targets offer more than the base interface through optional abilities
// found by type assertion (raw CTAP2 messages, U2F, STATUS, the CDP/1 byte
// stream); a check whose ability is missing is skipped with the reason, so
// a report always lists every check. MessengerChip and CDPTarget wrap a
// transport so that it offers them. Destructive checks (authenticatorReset,
// sealing a device in factory mode) run only when the options allow them.
package devicetest
