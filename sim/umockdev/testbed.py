#!/usr/bin/python3
# An emulated USB bus with FIDO security keys, for programs run with
# LD_PRELOAD=libumockdev-preload.so.0 and UMOCKDEV_DIR set to the testbed.
#
# Part of authbench's sim/umockdev package, which starts it; it needs only
# Debian's umockdev, gir1.2-umockdev-1.0 and python3-gi. The keys' CTAPHID
# reports travel as 64-byte UDP datagrams (sim/udphid) between this process
# and the simulated chips.
#
# Every key appears twice, as a real key does on Linux:
#   - a USB device /dev/bus/usb/BBB/DDD for libusb: sysfs attributes and
#     descriptors, and the usbdevfs ioctls libusb 1.0.26 uses (control
#     transfers answered from the descriptors, interrupt URBs carrying the
#     reports, claim/release, kernel-driver detach);
#   - a hidraw node /dev/hidrawN under its HID device, for libfido2 and
#     python-fido2: report descriptor and device information ioctls,
#     read() and write() of reports. As on Linux it exists while usbhid
#     holds the interface, that is until a libusb program detaches the
#     kernel driver to claim the interface, and again once it attaches it.
#
# Waiting without spinning: libusb waits for POLLOUT on the usbfs node and
# hidraw clients wait for POLLIN, and poll() is not emulated by umockdev. So
# the usbfs node is a FIFO of one page whose fullness this process keeps in
# step with "a URB can be reaped" (empty: POLLOUT), and the hidraw node is a
# pty into which it writes a byte while reports wait to be read.
#
# Protocol with the parent: argv[1] is the JSON configuration; once the
# testbed stands, one JSON line describing it goes to stdout. Commands come
# on stdin, one per line: "unplug N" (key N leaves the bus; its clients see
# ENODEV, ESHUTDOWN and EIO as from the kernel; its usbfs node stays, failing
# as a departed device's, until its address is reused: see UsbHandler.gone)
# and "plug N HOST:PORT" (key N comes back, with the bus's next address, its
# chip now at HOST:PORT).
# Each command is answered on stdout with "ok", "ok JSON" (plug: where the
# key is now) or "error: why". End of stdin ends the process.

import ctypes.util
import errno
import fcntl
import json
import os
import selectors
import shutil
import socket
import struct
import sys
import termios
import threading
import traceback
import tty

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402

REPORT = 64  # CTAPHID report size (CTAP 2.1 §11.2.4)
HIDRAW_BUFFER = 64  # reports a hidraw reader may have waiting (kernel's HIDRAW_BUFFER_SIZE)
IN_BUFFER = 256  # reports the key holds while nobody polls its IN endpoint


def ioc(direction, kind, nr, size):
    """Linux _IOC: direction 0 none, 1 write, 2 read, 3 both."""
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | nr


# usbdevfs (linux/usbdevice_fs.h), x86-64 and other LP64 layouts.
URB_SIZE = 56  # struct usbdevfs_urb without iso frames
USBDEVFS_CONTROL = ioc(3, "U", 0, 24)
USBDEVFS_SETINTERFACE = ioc(2, "U", 4, 8)
USBDEVFS_SETCONFIGURATION = ioc(2, "U", 5, 4)
USBDEVFS_GETDRIVER = ioc(1, "U", 8, 260)
USBDEVFS_SUBMITURB = ioc(2, "U", 10, URB_SIZE)
USBDEVFS_DISCARDURB = ioc(0, "U", 11, 0)
USBDEVFS_REAPURB = ioc(1, "U", 12, 8)
USBDEVFS_REAPURBNDELAY = ioc(1, "U", 13, 8)
USBDEVFS_CLAIMINTERFACE = ioc(2, "U", 15, 4)
USBDEVFS_RELEASEINTERFACE = ioc(2, "U", 16, 4)
USBDEVFS_CONNECTINFO = ioc(1, "U", 17, 8)
USBDEVFS_IOCTL = ioc(3, "U", 18, 16)
USBDEVFS_RESET = ioc(0, "U", 20, 0)
USBDEVFS_CLEAR_HALT = ioc(2, "U", 21, 4)
USBDEVFS_DISCONNECT = ioc(0, "U", 22, 0)
USBDEVFS_CONNECT = ioc(0, "U", 23, 0)
USBDEVFS_GET_CAPABILITIES = ioc(2, "U", 26, 4)
USBDEVFS_DISCONNECT_CLAIM = ioc(2, "U", 27, 264)
USBDEVFS_GET_SPEED = ioc(0, "U", 31, 0)

URB_TYPE_INTERRUPT = 1
URB_TYPE_CONTROL = 2
URB_TYPE_BULK = 3

# Capabilities a current kernel reports for an EHCI/xHCI port.
CAPS = 0x01 | 0x02 | 0x04 | 0x10  # ZERO_PACKET, BULK_CONTINUATION, NO_PACKET_SIZE_LIM, REAP_AFTER_DISCONNECT
SPEED_FULL = 2  # USB_SPEED_FULL

# hidraw (linux/hidraw.h)
HIDIOCGRDESCSIZE = ioc(2, "H", 0x01, 4)
HIDIOCGRDESC = ioc(2, "H", 0x02, 4 + 4096)
HIDIOCGRAWINFO = ioc(2, "H", 0x03, 8)
HID_MAX_DESCRIPTOR_SIZE = 4096
BUS_USB = 3

# The FIDO HID report descriptor (CTAP 2.1 §11.2.8.1): usage page 0xF1D0,
# usage 0x01, 64-byte input and output reports, no report IDs.
REPORT_DESCRIPTOR = bytes([
    0x06, 0xD0, 0xF1,  # Usage Page (FIDO Alliance)
    0x09, 0x01,        # Usage (CTAPHID)
    0xA1, 0x01,        # Collection (Application)
    0x09, 0x20,        #   Usage (Input Report Data)
    0x15, 0x00,        #   Logical Minimum (0)
    0x26, 0xFF, 0x00,  #   Logical Maximum (255)
    0x75, 0x08,        #   Report Size (8)
    0x95, 0x40,        #   Report Count (64)
    0x81, 0x02,        #   Input (Data, Variable, Absolute)
    0x09, 0x21,        #   Usage (Output Report Data)
    0x15, 0x00,        #   Logical Minimum (0)
    0x26, 0xFF, 0x00,  #   Logical Maximum (255)
    0x75, 0x08,        #   Report Size (8)
    0x95, 0x40,        #   Report Count (64)
    0x91, 0x02,        #   Output (Data, Variable, Absolute)
    0xC0,              # End Collection
])


def log(*args):
    print("umockdev testbed:", *args, file=sys.stderr, flush=True)


def string_descriptor(s):
    b = s.encode("utf-16-le")[:252]
    return bytes([2 + len(b), 3]) + b


class Descriptors:
    """The standard and HID descriptors of one key (USB 2.0 §9.6, HID 1.11 §6.2.1)."""

    def __init__(self, cfg):
        self.vendor = cfg["vendor"]
        self.product = cfg["product"]
        self.release = cfg["release"]
        self.interval = cfg.get("interval", 5)
        self.strings = {1: cfg["manufacturer"], 2: cfg["product_name"], 3: cfg["serial"]}
        self.device = struct.pack(
            "<BBHBBBBHHHBBBB", 18, 1, 0x0200, 0, 0, 0, 64,
            self.vendor, self.product, self.release, 1, 2, 3, 1)
        self.hid = struct.pack("<BBHBBBH", 9, 0x21, 0x0111, 0, 1, 0x22, len(REPORT_DESCRIPTOR))
        interface = struct.pack("<BBBBBBBBB", 9, 4, 0, 0, 2, 3, 0, 0, 0)
        ep_in = struct.pack("<BBBBHB", 7, 5, 0x81, 3, REPORT, self.interval)
        ep_out = struct.pack("<BBBBHB", 7, 5, 0x01, 3, REPORT, self.interval)
        body = interface + self.hid + ep_in + ep_out
        self.config = struct.pack("<BBHBBBBB", 9, 2, 9 + len(body), 1, 1, 0, 0x80, 50) + body

    def control(self, setup):
        """Answers a control request: (data, None) or (None, -errno) for a stall."""
        rtype, req, value, index, length = struct.unpack("<BBHHH", setup)
        data = None
        if rtype == 0x80 and req == 6:  # GET_DESCRIPTOR, device
            kind, i = value >> 8, value & 0xFF
            if kind == 1:
                data = self.device
            elif kind == 2 and i == 0:
                data = self.config
            elif kind == 3 and i == 0:
                data = bytes([4, 3, 0x09, 0x04])  # LANGID en-US
            elif kind == 3 and i in self.strings:
                data = string_descriptor(self.strings[i])
        elif rtype == 0x81 and req == 6 and index == 0:  # GET_DESCRIPTOR, interface
            if value >> 8 == 0x22:
                data = REPORT_DESCRIPTOR
            elif value >> 8 == 0x21:
                data = self.hid
        elif rtype == 0x80 and req == 8:  # GET_CONFIGURATION
            data = b"\x01"
        elif rtype in (0x80, 0x81, 0x82) and req == 0:  # GET_STATUS
            data = b"\x00\x00"
        elif rtype == 0x81 and req == 10:  # GET_INTERFACE
            data = b"\x00"
        elif (rtype, req) in ((0x00, 9), (0x01, 11), (0x21, 0x0A), (0x02, 1), (0x00, 1)):
            data = b""  # SET_CONFIGURATION, SET_INTERFACE, HID SET_IDLE, CLEAR_FEATURE
        if data is None:
            return None, -errno.EPIPE
        return data[:length], None


class Urb:
    """A submitted URB: its memory in the client and where it is going."""

    def __init__(self, data, buf, kind, endpoint, length):
        self.data = data  # IoctlData of struct usbdevfs_urb
        self.buf = buf  # IoctlData of its buffer, or None
        self.kind = kind
        self.endpoint = endpoint
        self.length = length

    def finish(self, status, payload=None, actual=None):
        if payload:
            offset = 8 if self.kind == URB_TYPE_CONTROL else 0
            self.buf.update(offset, list(payload))
        if actual is None:
            actual = len(payload) if payload is not None else 0
        self.data.update(4, list(struct.pack("<i", status)))
        self.data.update(28, list(struct.pack("<i", actual)))


class UsbClient:
    """One open file of the usbfs node."""

    def __init__(self, client):
        self.client = client
        self.pending = []  # URBs waiting for an IN report
        self.done = []  # URBs ready to be reaped, oldest first


class Key:
    """One emulated key: what stays the same across plugs (its port, its
    identity, its link to the chip) and, while it is plugged in, the
    UsbHandler of its USB device."""

    def __init__(self, bed, index, cfg):
        self.bed = bed
        self.index = index
        self.desc = Descriptors(cfg)
        self.lock = bed.lock
        self.port = index + 1
        self.sysname = "1-%d" % self.port
        self.iface = self.sysname + ":1.0"
        self.hidraw = "/dev/hidraw%d" % index
        self.usb = None  # UsbHandler while plugged in
        self.retired = []  # handlers of earlier plugs: files opened on them stay served
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.plug(cfg["chip"])

    def plug(self, chip):
        """Plugs the key in (again), reaching its chip at chip (host:port):
        it gets the bus's next address, as a replugged key does."""
        self.chip = chip
        host, port = chip.rsplit(":", 1)
        self.sock.connect((host, int(port)))
        # The node and its handler first, then sysfs: a program that finds
        # the device can open it at once, as the kernel's devtmpfs has the
        # node before udev announces the device.
        address = self.bed.next_address()
        self.bed.release(address)
        self.usb = UsbHandler(self, address)
        self.bed.testbed.attach_ioctl(self.usb.usbfs, self.usb)
        self.usb.add_devices()
        self.usb.bind_usbhid()
        if self.bed.ready:
            for path in (self.usb.dev_path, self.usb.iface_path):
                self.bed.testbed.uevent(path, "add")

    def unplug(self):
        """Pulls the key out: see UsbHandler.gone."""
        usb, self.usb = self.usb, None
        if usb is None:
            return False
        self.retired.append(usb)
        usb.gone()
        return True

    def report_in(self, report):
        """An input report from the chip (UDP thread)."""
        with self.lock:
            if self.usb is not None:
                self.usb.report_in(report)

    def report_out(self, report):
        """Sends one output report to the chip (lock held)."""
        report = bytes(report[:REPORT]).ljust(REPORT, b"\0")
        try:
            self.sock.send(report)
        except OSError as e:
            log("key %d: sending a report to %s: %s" % (self.index, self.chip, e))

    @staticmethod
    def name(parent, name):
        # umockdev checks a parent's directory in the real /sys unless it runs
        # under its own preload; a name with slashes puts the device below it.
        return parent[len("/sys/devices/"):] + "/" + name


class UsbHandler(UMockdev.IoctlBase):
    """One plug of a key: its USB device and interface in sysfs, its usbfs
    node, and the usbdevfs ioctls on it; and the kernel's usbhid driver on
    its interface, with the HID device and hidraw node that come with it."""

    def __init__(self, key, address):
        super().__init__()
        self.key = key
        self.address = address
        self.usbfs = "/dev/bus/usb/001/%03d" % address
        self.alive = True
        self.clients = {}  # IoctlClient -> UsbClient
        self.claimed = None  # UsbClient holding interface 0
        self.in_buffer = []  # reports for the claimed interface with no IN URB pending
        self.driver = None  # kernel driver bound to interface 0: "usbhid" or None
        self.hid = None  # HidrawHandler while usbhid is bound
        # The node is a FIFO of one page; empty means "a URB can be reaped".
        node = key.bed.root + self.usbfs
        os.makedirs(os.path.dirname(node), exist_ok=True)
        os.mkfifo(node, 0o666)
        self.fifo = os.open(node, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        fcntl.fcntl(self.fifo, fcntl.F_SETPIPE_SZ, 4096)
        self.reapable = True
        self._set_reapable(False)

    def add_devices(self):
        """The USB device and its interface appear in sysfs."""
        key = self.key
        bed, d = key.bed.testbed, key.desc
        serial = d.strings[3]
        self.dev_path = bed.add_device(
            "usb", key.bed.hub_name + "/" + key.sysname, None,
            [
                "busnum", "1", "devnum", str(self.address), "devpath", str(key.port),
                "speed", "12", "version", " 2.00", "maxchild", "0",
                "idVendor", "%04x" % d.vendor, "idProduct", "%04x" % d.product,
                "bcdDevice", "%04x" % d.release, "bDeviceClass", "00",
                "bDeviceSubClass", "00", "bDeviceProtocol", "00", "bMaxPacketSize0", "64",
                "bNumConfigurations", "1", "bConfigurationValue", "1", "bNumInterfaces", " 1",
                "bmAttributes", "80", "bMaxPower", "100mA", "authorized", "1",
                "removable", "removable",
                "manufacturer", d.strings[1], "product", d.strings[2], "serial", serial,
                "dev", "189:%d" % (self.address - 1),
            ],
            [
                "DEVTYPE", "usb_device", "DRIVER", "usb", "DEVNAME", self.usbfs,
                "BUSNUM", "001", "DEVNUM", "%03d" % self.address,
                "MAJOR", "189", "MINOR", str(self.address - 1),
                "PRODUCT", "%x/%x/%x" % (d.vendor, d.product, d.release), "TYPE", "0/0/0",
                "ID_VENDOR_ID", "%04x" % d.vendor, "ID_MODEL_ID", "%04x" % d.product,
                "ID_SERIAL_SHORT", serial, "ID_FIDO_TOKEN", "1",
            ])
        bed.set_attribute_binary(self.dev_path, "descriptors", list(d.device + d.config))
        modalias = "usb:v%04Xp%04Xd%04Xdc00dsc00dp00ic03isc00ip00in00" % (d.vendor, d.product, d.release)
        self.iface_path = bed.add_device(
            "usb", Key.name(self.dev_path, key.iface), None,
            [
                "bInterfaceClass", "03", "bInterfaceSubClass", "00", "bInterfaceProtocol", "00",
                "bInterfaceNumber", "00", "bAlternateSetting", " 0", "bNumEndpoints", "02",
                "modalias", modalias,
            ],
            [
                "DEVTYPE", "usb_interface", "DRIVER", "usbhid", "INTERFACE", "3/0/0",
                "PRODUCT", "%x/%x/%x" % (d.vendor, d.product, d.release), "TYPE", "0/0/0",
                "MODALIAS", modalias,
            ])

    # --- called with the key's lock held ---

    def bind_usbhid(self):
        """usbhid takes the interface: a HID device and its hidraw node appear."""
        key = self.key
        bed, d = key.bed.testbed, key.desc
        self.driver = "usbhid"
        self.hid = HidrawHandler(key)  # the node and its handler first, as in plug
        bed.attach_ioctl(key.hidraw, self.hid)
        hid_name = "0003:%04X:%04X.%04X" % (d.vendor, d.product, key.bed.next_hid())
        hid_path = bed.add_device(
            "hid", Key.name(self.iface_path, hid_name), None,
            [],
            [
                "DRIVER", "hid-generic", "HID_ID", "0003:%08X:%08X" % (d.vendor, d.product),
                "HID_NAME", "%s %s" % (d.strings[1], d.strings[2]),
                "HID_PHYS", "usb-umockdev-%d/input0" % key.port, "HID_UNIQ", d.strings[3],
                "MODALIAS", "hid:b0003g0001v%08Xp%08X" % (d.vendor, d.product),
            ])
        bed.set_attribute_binary(hid_path, "report_descriptor", list(REPORT_DESCRIPTOR))
        hidraw_path = bed.add_device(
            "hidraw", Key.name(hid_path, "hidraw/hidraw%d" % key.index), None,
            ["dev", "%d:%d" % (key.bed.hidraw_major, key.index)],
            ["DEVNAME", key.hidraw, "MAJOR", str(key.bed.hidraw_major), "MINOR", str(key.index)])
        self.hid.hid_path, self.hid.hidraw_path = hid_path, hidraw_path
        if key.bed.ready:
            bed.uevent(hid_path, "add")
            bed.uevent(hidraw_path, "add")

    def unbind_usbhid(self):
        """usbhid lets the interface go: its HID device and hidraw node leave."""
        self.driver = None
        h, self.hid = self.hid, None
        if h is None:
            return
        self.key.retired.append(h)
        h.gone()
        bed = self.key.bed.testbed
        bed.detach_ioctl(self.key.hidraw)
        for path in (h.hidraw_path, h.hid_path):
            bed.uevent(path, "remove")
            bed.remove_device(path)

    def _set_reapable(self, ready):
        if ready == self.reapable:
            return
        self.reapable = ready
        try:
            if ready:
                os.read(self.fifo, 4096)
            else:
                os.write(self.fifo, b"\0")
        except BlockingIOError:
            pass

    def _update_reapable(self):
        self._set_reapable(any(c.done for c in self.clients.values()))

    def report_in(self, report):
        if self.claimed is not None:
            c = self.claimed
            urb = next((u for u in c.pending if u.endpoint == 0x81), None)
            if urb is not None:
                c.pending.remove(urb)
                urb.finish(0, report[:urb.length])
                c.done.append(urb)
                self._update_reapable()
            elif len(self.in_buffer) < IN_BUFFER:
                self.in_buffer.append(report)
        if self.hid is not None:
            self.hid.report_in(report)

    def gone(self):
        """The key was pulled out: its devices leave sysfs with "remove"
        uevents (the hidraw node with its HID device), waiting URBs complete
        with ESHUTDOWN and later calls fail with ENODEV.

        The usbfs node and its ioctl socket stay until the address is given
        to another device (release), unlike on Linux, where the node goes at
        once: a program that found the key in sysfs just before it left
        opens the node a moment later, and umockdev's preload (0.17) cannot
        take that from an emulated node. If the socket's listener closes
        between the program's connect() and the handler's accept(), the
        connection is reset and the preload aborts the program at its first
        ioctl; if the node is gone, the failed open() still connects to a
        socket and leaves an entry in the preload's table of 50 descriptors,
        which aborts the program once full. Kept, the node opens and every
        ioctl on it fails with ENODEV, as on a departed device."""
        self.alive = False
        self.unbind_usbhid()
        bed = self.key.bed.testbed
        for path in (self.iface_path, self.dev_path):  # children first: each has its links
            bed.uevent(path, "remove")
            bed.remove_device(path)
        for c in self.clients.values():
            for urb in c.pending:
                urb.finish(-errno.ESHUTDOWN)
                c.done.append(urb)
            c.pending = []
        self.in_buffer = []
        self._update_reapable()
        self.key.bed.departed[self.address] = self

    def release(self):
        """The address goes to another device: the node of this departed
        one and its ioctl socket leave. Files opened on it stay served."""
        self.key.bed.testbed.detach_ioctl(self.usbfs)
        try:
            os.unlink(self.key.bed.root + self.usbfs)
        except OSError:
            pass

    # --- umockdev's calls (worker thread) ---

    def do_client_connected(self, client):
        with self.key.lock:
            self.clients[client] = UsbClient(client)
        client.connect("notify::connected", self._closed)

    def _closed(self, client, _pspec):
        if client.get_connected():
            return
        with self.key.lock:
            c = self.clients.pop(client, None)
            if c is not None and self.claimed is c:
                self.claimed = None
                self.in_buffer = []
            self._update_reapable()

    def do_handle_ioctl(self, client):
        try:
            with self.key.lock:
                res, err = self._ioctl(client)
        except Exception:
            log("usbfs ioctl %#x:\n%s" % (client.get_request(), traceback.format_exc()))
            res, err = -1, errno.EIO
        client.complete(res, err)
        return True

    def _ioctl(self, client):
        req = client.get_request()
        arg = client.get_arg()
        c = self.clients.get(client)
        if c is None:
            c = self.clients[client] = UsbClient(client)
        if req in (USBDEVFS_REAPURB, USBDEVFS_REAPURBNDELAY):
            if c.done:
                urb = c.done.pop(0)
                self._update_reapable()
                arg.resolve(0, 8).set_ptr(0, urb.data)
                return 0, 0
            if not self.alive:
                return -1, errno.ENODEV
            if req == USBDEVFS_REAPURB:
                log("blocking REAPURB is not emulated; answering EAGAIN")
            return -1, errno.EAGAIN
        if req == USBDEVFS_DISCARDURB:
            addr = struct.unpack("<Q", bytes(arg.retrieve()))[0]
            for urb in c.pending:
                if urb.data.client_addr == addr:
                    c.pending.remove(urb)
                    urb.finish(-errno.ENOENT)
                    c.done.append(urb)
                    self._update_reapable()
                    return 0, 0
            return -1, errno.EINVAL
        if not self.alive:
            return -1, errno.ENODEV
        if req == USBDEVFS_GET_CAPABILITIES:
            arg.resolve(0, 4).update(0, list(struct.pack("<I", CAPS)))
            return 0, 0
        if req == USBDEVFS_GET_SPEED:
            return SPEED_FULL, 0
        if req == USBDEVFS_CONNECTINFO:
            arg.resolve(0, 8).update(0, list(struct.pack("<IB3x", self.address, 0)))
            return 0, 0
        if req == USBDEVFS_CLAIMINTERFACE:
            iface = struct.unpack("<I", bytes(arg.resolve(0, 4).retrieve()))[0]
            return self._claim(c, iface, False)
        if req == USBDEVFS_DISCONNECT_CLAIM:
            d = arg.resolve(0, 264)
            iface, flags = struct.unpack("<II", bytes(d.retrieve()[:8]))
            driver = bytes(d.retrieve()[8:264]).split(b"\0", 1)[0].decode(errors="replace")
            # Flags: 1 detach only if the driver is the named one, 2 only if it is not.
            bound = "usbfs" if self.claimed is not None else self.driver
            if bound is not None and ((flags & 1 and bound != driver) or (flags & 2 and bound == driver)):
                return -1, errno.EBUSY
            return self._claim(c, iface, True)
        if req == USBDEVFS_RELEASEINTERFACE:
            iface = struct.unpack("<I", bytes(arg.resolve(0, 4).retrieve()))[0]
            if iface != 0 or self.claimed is not c:
                return -1, errno.EINVAL
            self.claimed = None
            self.in_buffer = []
            return 0, 0
        if req == USBDEVFS_GETDRIVER:
            d = arg.resolve(0, 260)
            iface = struct.unpack("<I", bytes(d.retrieve()[:4]))[0]
            if iface != 0:
                return -1, errno.EINVAL
            name = "usbfs" if self.claimed is not None else self.driver
            if name is None:
                return -1, errno.ENODATA
            d.update(4, list(name.encode() + b"\0"))
            return 0, 0
        if req == USBDEVFS_IOCTL:
            d = arg.resolve(0, 16)
            ifno, code = struct.unpack("<ii", bytes(d.retrieve()[:8]))
            if ifno != 0:
                return -1, errno.EINVAL
            if code == USBDEVFS_DISCONNECT:  # detach the kernel driver
                if self.claimed is not None:
                    return -1, errno.EINVAL  # usbfs's own claim: release it instead
                if self.driver is None:
                    return -1, errno.ENODATA
                self.unbind_usbhid()
                return 0, 0
            if code == USBDEVFS_CONNECT:  # let the kernel bind a driver again
                if self.claimed is not None:
                    return -1, errno.EBUSY
                if self.driver is None:
                    self.bind_usbhid()
                return 1, 0
            return -1, errno.ENOTTY
        if req in (USBDEVFS_SETCONFIGURATION, USBDEVFS_SETINTERFACE, USBDEVFS_CLEAR_HALT, USBDEVFS_RESET):
            return 0, 0
        if req == USBDEVFS_CONTROL:
            d = arg.resolve(0, 24)
            raw = bytes(d.retrieve())
            setup, length = raw[:8], struct.unpack("<H", raw[6:8])[0]
            answer, err = self.key.desc.control(setup)
            if err is not None:
                return -1, -err
            if length and answer:
                d.resolve(16, length).update(0, list(answer))
            return len(answer), 0
        if req == USBDEVFS_SUBMITURB:
            return self._submit(c, arg)
        return -1, errno.ENOTTY

    def _claim(self, c, iface, detach):
        """Claims interface 0 for c; the kernel refuses while another file or
        a kernel driver holds it, unless detach lets it unbind the driver."""
        if iface != 0:
            return -1, errno.ENOENT
        if self.claimed is c:
            return 0, 0
        if self.claimed is not None:
            return -1, errno.EBUSY
        if self.driver is not None:
            if not detach:
                return -1, errno.EBUSY
            self.unbind_usbhid()
        self.in_buffer = []
        self.claimed = c
        return 0, 0

    def _submit(self, c, arg):
        u = arg.resolve(0, URB_SIZE)
        kind, endpoint, _status, _flags, _buf, length = struct.unpack("<BBxxiI4xQi", bytes(u.retrieve()[:28]))
        buf = u.resolve(16, length) if length > 0 else None
        urb = Urb(u, buf, kind, endpoint, length)
        if kind == URB_TYPE_CONTROL:
            if length < 8:
                return -1, errno.EINVAL
            answer, err = self.key.desc.control(bytes(buf.retrieve()[:8]))
            if err is not None:
                urb.finish(err)
            else:
                urb.finish(0, answer, len(answer))
            c.done.append(urb)
            self._update_reapable()
            return 0, 0
        if kind not in (URB_TYPE_INTERRUPT, URB_TYPE_BULK) or endpoint not in (0x01, 0x81):
            return -1, errno.ENOENT
        res, err = self._claim(c, 0, False)  # usbfs claims an interface on its first use
        if res < 0:
            return res, err
        if endpoint == 0x01:
            self.key.report_out(bytes(buf.retrieve()) if buf else b"")
            urb.finish(0, None, length)
            c.done.append(urb)
        elif self.in_buffer:
            report = self.in_buffer.pop(0)
            urb.finish(0, report[:length])
            c.done.append(urb)
        else:
            c.pending.append(urb)
        self._update_reapable()
        return 0, 0


class HidrawHandler(UMockdev.IoctlBase):
    """hidraw ioctls, read() and write() on /dev/hidrawN, for as long as
    usbhid holds the interface: each binding has its own handler, node and
    pty, and files opened on an earlier one fail as on a departed device."""

    def __init__(self, key):
        super().__init__()
        self.key = key
        self.hid_path = self.hidraw_path = None  # in sysfs, once there
        self.alive = True
        self.clients = {}  # IoctlClient -> reports waiting to be read
        self.waiting = set()  # IoctlClients blocked in read()
        # The node is a pty: a byte in its input means "a report waits".
        self.pty_master, self.pty_slave = os.openpty()
        tty.setraw(self.pty_slave)
        for fd in (self.pty_master, self.pty_slave):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
            os.set_inheritable(fd, False)
        os.symlink(os.ttyname(self.pty_slave), key.bed.root + key.hidraw)

    # --- called with the key's lock held ---

    def _update_readable(self):
        if not self.alive:
            return
        if any(self.clients.values()):
            try:
                os.write(self.pty_master, b"\0")
            except OSError:
                pass
        else:
            try:
                termios.tcflush(self.pty_slave, termios.TCIFLUSH)
            except OSError:
                pass

    def report_in(self, report):
        """Gives an input report to every open file, as hidraw does."""
        for client, queue in self.clients.items():
            if client in self.waiting:
                self.waiting.discard(client)
                arg = client.get_arg()
                n = min(len(arg.retrieve()), len(report))
                arg.update(0, list(report[:n]))
                client.complete(n, 0)
            elif len(queue) < HIDRAW_BUFFER:
                queue.append(report)
        self._update_readable()

    def gone(self):
        """The device left: blocked reads fail with EIO, pollers get a
        hang-up, the node goes away."""
        self.alive = False
        for client in self.waiting:
            client.complete(-1, errno.EIO)
        self.waiting.clear()
        for queue in self.clients.values():
            queue.clear()
        try:
            os.unlink(self.key.bed.root + self.key.hidraw)
        except OSError:
            pass
        os.close(self.pty_master)  # a hung-up pty: POLLHUP, as a departed hidraw
        os.close(self.pty_slave)
        self.pty_master = self.pty_slave = -1

    # --- umockdev's calls (worker thread) ---

    def do_client_connected(self, client):
        with self.key.lock:
            self.clients[client] = []
        client.connect("notify::connected", self._closed)

    def _closed(self, client, _pspec):
        if client.get_connected():
            return
        with self.key.lock:
            self.clients.pop(client, None)
            self.waiting.discard(client)
            self._update_readable()

    def do_handle_ioctl(self, client):
        try:
            with self.key.lock:
                res, err = self._ioctl(client)
        except Exception:
            log("hidraw ioctl %#x:\n%s" % (client.get_request(), traceback.format_exc()))
            res, err = -1, errno.EIO
        client.complete(res, err)
        return True

    def _ioctl(self, client):
        key = self.key
        if not self.alive:
            return -1, errno.ENODEV
        req = client.get_request()
        arg = client.get_arg()
        d = key.desc
        if req == HIDIOCGRDESCSIZE:
            arg.resolve(0, 4).update(0, list(struct.pack("<I", len(REPORT_DESCRIPTOR))))
            return 0, 0
        if req == HIDIOCGRDESC:
            # Read only the size field and as much as the caller asks for.
            head = arg.resolve(0, 4 + len(REPORT_DESCRIPTOR))
            size = struct.unpack("<I", bytes(head.retrieve()[:4]))[0]
            if size > HID_MAX_DESCRIPTOR_SIZE - 1:
                return -1, errno.EINVAL
            head.update(4, list(REPORT_DESCRIPTOR[:size]))
            return 0, 0
        if req == HIDIOCGRAWINFO:
            arg.resolve(0, 8).update(0, list(struct.pack("<IHH", BUS_USB, d.vendor, d.product)))
            return 0, 0
        kind, nr, size = (req >> 8) & 0xFF, req & 0xFF, (req >> 16) & 0x3FFF
        if kind == ord("H") and req >> 30 == 2 and nr in (0x04, 0x05, 0x08) and size > 0:
            # HIDIOCGRAWNAME, HIDIOCGRAWPHYS, HIDIOCGRAWUNIQ
            text = {
                0x04: "%s %s" % (d.strings[1], d.strings[2]),
                0x05: "usb-umockdev-%d/input0" % key.port,
                0x08: d.strings[3],
            }[nr].encode()[:size - 1] + b"\0"
            arg.resolve(0, len(text)).update(0, list(text))
            return len(text), 0
        return -1, errno.EINVAL

    def do_handle_write(self, client):
        key = self.key
        data = bytes(client.get_arg().retrieve())
        with key.lock:
            if not self.alive:
                res, err = -1, errno.ENODEV
            elif len(data) < 1 or data[0] != 0 or len(data) > REPORT + 1:
                res, err = -1, errno.EINVAL
            else:
                key.report_out(data[1:])
                res, err = len(data), 0
        client.complete(res, err)
        return True

    def do_handle_read(self, client):
        with self.key.lock:
            queue = self.clients.setdefault(client, [])
            if queue:
                report = queue.pop(0)
                arg = client.get_arg()
                n = min(len(arg.retrieve()), len(report))
                arg.update(0, list(report[:n]))
                self._update_readable()
                client.complete(n, 0)
            elif not self.alive:
                client.complete(-1, errno.EIO)
            else:
                self.waiting.add(client)  # answered when a report comes
        return True


class Bed:
    def __init__(self, cfg):
        self.lock = threading.RLock()
        self.testbed = UMockdev.Testbed.new()
        self.root = self.testbed.get_root_dir()
        try:
            self._build(cfg)
        except BaseException:
            # Nobody else knows the directory yet: the testbed removes it
            # when it goes.
            self.testbed = None
            raise

    def _build(self, cfg):
        self.hidraw_major = 241
        self.hid_count = 0
        self.last_address = 1  # the root hub's
        self.departed = {}  # address -> UsbHandler of a key that left, its node still there
        self.ready = False  # uevents go out once programs may be listening
        self.hub_name = "usb1"
        self.hub = self.testbed.add_device(
            "usb", self.hub_name, None,
            [
                "busnum", "1", "devnum", "1", "devpath", "0", "speed", "480", "version", " 2.00",
                "maxchild", str(max(1, len(cfg["keys"]))), "idVendor", "1d6b", "idProduct", "0002",
                "bcdDevice", "0601", "bDeviceClass", "09", "bNumConfigurations", "1",
                "bConfigurationValue", "1", "bNumInterfaces", " 1", "authorized", "1",
                "manufacturer", "Linux umockdev", "product", "authbench emulated bus",
                "serial", "umockdev", "dev", "189:0",
            ],
            [
                "DEVTYPE", "usb_device", "DRIVER", "usb", "DEVNAME", "/dev/bus/usb/001/001",
                "BUSNUM", "001", "DEVNUM", "001", "MAJOR", "189", "MINOR", "0",
                "PRODUCT", "1d6b/2/601", "TYPE", "9/0/1",
            ])
        hub_device = struct.pack("<BBHBBBBHHHBBBB", 18, 1, 0x0200, 9, 0, 1, 64, 0x1D6B, 2, 0x0601, 3, 2, 1, 1)
        hub_config = (struct.pack("<BBHBBBBB", 9, 2, 25, 1, 1, 0, 0xE0, 0)
                      + struct.pack("<BBBBBBBBB", 9, 4, 0, 0, 1, 9, 0, 0, 0)
                      + struct.pack("<BBBBHB", 7, 5, 0x81, 3, 4, 12))
        self.testbed.set_attribute_binary(self.hub, "descriptors", list(hub_device + hub_config))
        hub_node = self.root + "/dev/bus/usb/001/001"
        os.makedirs(os.path.dirname(hub_node), exist_ok=True)
        with open(hub_node, "wb"):
            pass
        with self.lock:
            self.keys = [Key(self, i, k) for i, k in enumerate(cfg["keys"])]
        self.ready = True
        self.stop_r, self.stop_w = os.pipe()
        self.relay = threading.Thread(target=self._relay, name="udp relay", daemon=True)
        self.relay.start()

    def next_hid(self):
        self.hid_count += 1
        return self.hid_count

    def next_address(self):
        """The address the kernel gives the next device: one more than the
        last, wrapping after 127 (USB 2.0 §9.4.6), skipping those in use."""
        used = {1} | {k.usb.address for k in getattr(self, "keys", []) if k.usb is not None}
        while True:
            self.last_address = self.last_address % 127 + 1
            if self.last_address not in used:
                return self.last_address

    def release(self, address):
        """Removes what a departed key left at address (UsbHandler.release)."""
        usb = self.departed.pop(address, None)
        if usb is not None:
            usb.release()

    def _relay(self):
        sel = selectors.DefaultSelector()
        for k in self.keys:
            sel.register(k.sock, selectors.EVENT_READ, k)
        sel.register(self.stop_r, selectors.EVENT_READ, None)
        while True:
            for sk, _ in sel.select():
                k = sk.data
                if k is None:
                    return
                while True:
                    try:
                        report = k.sock.recv(REPORT + 1)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break  # e.g. ECONNREFUSED from an earlier send: the chip is not up
                    if len(report) == REPORT:
                        try:
                            k.report_in(report)
                        except Exception:
                            log("key %d: report from the chip:\n%s" % (k.index, traceback.format_exc()))

    @staticmethod
    def describe_key(k):
        return {"usbfs": k.usb.usbfs, "hidraw": k.hidraw, "path": k.iface, "bus": 1, "address": k.usb.address}

    def describe(self):
        return {"dir": self.root, "keys": [self.describe_key(k) for k in self.keys]}

    def command(self, line):
        words = line.split()
        if len(words) < 2 or not words[1].isdigit() or int(words[1]) >= len(self.keys):
            return "error: unknown command %r" % line
        k = self.keys[int(words[1])]
        with self.lock:
            if words[0] == "unplug" and len(words) == 2:
                k.unplug()
                return "ok"
            if words[0] == "plug" and len(words) == 3:
                if k.usb is not None:
                    return "error: key %d is plugged in" % k.index
                k.plug(words[2])
                return "ok " + json.dumps(self.describe_key(k))
        return "error: unknown command %r" % line

    def close(self):
        os.write(self.stop_w, b"x")
        self.relay.join(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)


def main():
    if len(sys.argv) != 2:
        print("usage: testbed.py CONFIG-JSON", file=sys.stderr)
        return 2
    cfg = json.loads(sys.argv[1])
    if ctypes.util.find_library("umockdev-preload") is None:
        print(json.dumps({"error": "libumockdev-preload.so.0 not found (Debian package umockdev)"}), flush=True)
        return 1
    try:
        bed = Bed(cfg)
    except Exception:
        log("setting up the testbed:\n" + traceback.format_exc())
        return 1
    print(json.dumps(bed.describe()), flush=True)
    try:
        for line in sys.stdin:
            line = line.strip()
            if line:
                print(bed.command(line), flush=True)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        bed.close()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Skip the interpreter's teardown: GObjects that umockdev's worker thread
    # still uses must not be finalized under it.
    os._exit(code)
