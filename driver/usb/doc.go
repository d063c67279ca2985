// Package usb is the USB driver for MitID chips: FIDO security keys that
// speak CTAPHID (CTAP 2.1 §11.2) over USB HID interrupt endpoints, reached
// through libusb with github.com/google/gousb.
//
// Where it sits: this package opens the OS resource and hands 64-byte
// reports to the pure protocol packages, which do everything else:
//
//	List, Open       gousb: enumerate, read descriptors, claim the interface
//	endpoints        interrupt IN/OUT endpoints as an io.ReadWriter of reports
//	NewChip          ctaphid.Open (CTAPHID_INIT) -> ctaphid.Conn
//	Chip             ctap2.Client (device.Chip) and u2f.Client over the Conn;
//	                 for a key without CBOR (U2F-only), u2f.Chip: the CTAP 2.1
//	                 §10 translation over CTAPHID_MSG
//
// Only usb_cgo.go touches gousb. Everything above it takes an io.ReadWriter
// report transport (one whole report per Read and Write, no report-ID byte),
// so NewChip runs the same code over a real key, an in-memory
// ctaphid.NewPipe and sim/udphid's UDP datagrams; the tests use the latter
// two against sim/chip, and take the whole path (List, Open, gousb, libusb,
// usbdevfs) to sim/chip's keys on an emulated USB bus (sim/umockdev; the
// test binary runs itself with umockdev's preload library). A build
// without cgo compiles, and List and Open then return an error wrapping
// device.ErrNotSupported.
//
// Finding keys (CTAP 2.1 §11.2.8): List looks at every device's interfaces
// and keeps those of HID class 0x03 without a boot subclass, with an
// interrupt IN and an interrupt OUT endpoint of 64 bytes. For each it reads
// the configuration descriptor to learn the report descriptor's length from
// the HID descriptor (HID 1.11 §6.2.1), reads the report descriptor with
// GET_DESCRIPTOR (type 0x22, the interface number as wIndex) and keeps the
// interface when it declares the FIDO usage page 0xF1D0 with usage 0x01 and
// 64-byte reports (package hid parses the descriptors). An interface that
// looks like CTAPHID but cannot be opened (no permission) is listed too,
// without product and serial strings, so that Open can say why it fails.
// Keys are named by Info.Path, the Linux sysfs name of the interface:
// "BUS-PORT[.PORT...]:CONFIG.INTERFACE", e.g. "1-2.3:1.0"; Selector picks
// one by vendor and product ID, serial number, path and index.
//
// gousb has no hotplug events: Watch polls List and reports arrivals and
// departures (Diff). A key listed before it can be opened (on Linux, until
// udev has given the user access to its node) is held back a few lists
// until its serial can be read, then reported as it is; an Updated event
// brings its strings if it can be opened later.
//
// Opening a key claims its interface. gousb's automatic kernel-driver
// detachment is switched on after the configuration is taken, so libusb
// detaches usbhid from the FIDO interface only, while the key is open, and
// attaches it again on Close; other interfaces of a composite key (an OTP
// keyboard, a CCID reader) stay with their drivers.
//
// Permissions (Linux): libusb needs read-write access to the key's node in
// /dev/bus/usb, which only root has by default. The udev rule shipped next to
// this file, 70-authbench-fido.rules, gives the logged-in user access to the
// keys of a few common vendors; add lines for other keys as its comments
// explain. Install it with
//
//	sudo cp driver/usb/70-authbench-fido.rules /etc/udev/rules.d/
//	sudo udevadm control --reload
//	sudo udevadm trigger
//
// and plug the key in again. Without it, Open fails with an error wrapping
// os.ErrPermission that says so.
//
// Deadlines: every Chip method bounds its call by ctx, and by
// Options.Timeout when ctx has no deadline, so a key that stops answering
// never hangs the caller; a key unplugged mid-command ends the call with an
// error wrapping device.ErrRemoved.
//
// Hardware tests are opt-in: go test ./driver/usb -hw=usb:VID:PID runs the
// chip checks against a real key (touch it when asked).
package usb
