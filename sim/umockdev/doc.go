// Package umockdev shows simulated chips to unmodified host programs as USB
// security keys, on machines without USB: libusb programs (gousb and so
// driver/usb, pyusb, lsusb) find a FIDO key on bus 1, and hidraw programs
// (libfido2's fido2-token, python-fido2, browsers' hidraw backends) find it
// as /dev/hidraw0.
//
// Where it sits: the keys live in a umockdev testbed, a directory holding a
// fake /sys and /dev that programs see instead of the real ones when they
// run with LD_PRELOAD=libumockdev-preload.so.0 and UMOCKDEV_DIR pointing at
// it (Environ adds both). umockdev sends the ioctl, read and write calls a
// program makes on the keys' device nodes to a handler; ours is a small
// Python program on umockdev's GObject API (testbed.py, embedded here and
// run with Debian's python3-gi) that answers the usbdevfs ioctls libusb
// 1.0.26 uses and the hidraw ones, and relays each key's 64-byte CTAPHID
// reports as UDP datagrams (package sim/udphid) to this package, which
// serves them with device/ctaphid from the simulated chip:
//
//	program --LD_PRELOAD--> umockdev --ioctl--> testbed.py --UDP--> Testbed --ctaphid.Serve--> chip
//
// A key appears as a real one does on Linux: a USB device (1-N, address
// N+1, vendor 0x1209 product 0x0001 by default, which pid.codes keeps for
// tests) with one HID interface 1-N:1.0 of usage page 0xF1D0 and 64-byte
// interrupt endpoints 0x81 and 0x01, its HID device, and its hidraw node.
// Control transfers are answered from the descriptors; an interrupt OUT
// URB sends a report to the chip; an IN URB waits for the chip's next
// report. The kernel's usbhid holds the interface at first, and its HID
// device and hidraw node exist while it does: claiming the interface fails
// with EBUSY until a program detaches the driver (USBDEVFS_DISCONNECT, or
// DISCONNECT_CLAIM as libusb's auto-detach does), which makes the hidraw
// node leave (its open files fail as on a departed device); attaching the
// driver again (USBDEVFS_CONNECT) brings a new one. Discarding URBs and
// claiming behave as the kernel's usbdevfs does, so does unplugging
// (Testbed.Unplug): waiting URBs complete with ESHUTDOWN, later calls fail
// with ENODEV, hidraw readers get EIO and a hang-up, and the key leaves
// sysfs with "remove" uevents; Testbed.Plug brings it back at the bus's
// next address, powered up anew.
//
// Waiting costs nothing: umockdev does not emulate poll(), and a plain file
// as device node is always ready, which makes libusb spin on
// REAPURBNDELAY. The helper therefore makes the usbfs node a FIFO whose
// fullness follows "a URB can be reaped", and the hidraw node a pty that
// holds a byte while a report waits, so pollers sleep until there is
// something to do.
//
// Requirements (Debian 12): umockdev, gir1.2-umockdev-1.0 and python3-gi.
// Nothing is compiled: this package builds without cgo. Programs that use
// the keys need nothing but the environment from Environ.
package umockdev
