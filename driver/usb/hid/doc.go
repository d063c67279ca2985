// Package hid reads the USB HID descriptors a host needs to recognise a FIDO
// authenticator: the HID class descriptor that an interface carries in its
// configuration descriptor, and the HID report descriptor that the device
// sends on request.
//
// Where it sits: driver/usb asks libusb for the raw descriptor bytes and hands
// them to this package, which is pure Go with no I/O, so it is tested and
// fuzzed without USB. Nothing here knows about gousb.
//
// What is implemented, by spec section:
//
//   - Device Class Definition for HID 1.11 §6.2.1, the HID descriptor
//     ([ClassDescriptor], [ParseClassDescriptor]), found after its interface
//     descriptor in a configuration descriptor (USB 2.0 §9.4.3 GET_DESCRIPTOR,
//     §9.6.3 and §9.6.5; [FindClassDescriptor]).
//   - HID 1.11 §6.2.2, the report descriptor: short items (§6.2.2.2) of the
//     three types Main (§6.2.2.4: Input, Output, Feature, Collection, End
//     Collection), Global (§6.2.2.7, with Push and Pop) and Local (§6.2.2.8);
//     long items (§6.2.2.3) are kept as bytes and otherwise skipped
//     ([ParseItems], [EncodeItems], [Parse]).
//   - CTAP 2.1 §11.2.8.2 "HID report descriptor and device discovery": a
//     CTAPHID interface is a top-level application collection on the FIDO
//     Alliance usage page 0xF1D0 (HID Usage Tables, HUTRR48) with usage 0x01,
//     whose input (usage 0x20) and output (usage 0x21) reports are 64 bytes
//     without a report ID ([FindFIDO], [UsagePageFIDO]).
//
// Parsers are strict: malformed bytes give a *SyntaxError (which unwraps to
// device.ErrProtocol) and never a half-filled value.
package hid
