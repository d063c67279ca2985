// Package device is the shared vocabulary of authbench: the kinds of
// authenticator, the small interfaces that drivers and simulators both
// implement, the value types they exchange, and the sentinel errors callers
// branch on.
//
// It performs no I/O. Protocol codecs live in the sub-packages (ctaphid, apdu,
// ctap2, u2f, frame, otp); drivers for real hardware live in driver/, and
// software simulators in sim/. Both implement the interfaces declared here, so
// that one conformance suite (device/devicetest) runs against either.
package device
