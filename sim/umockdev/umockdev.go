package umockdev

import (
	"bufio"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/sim/udphid"
)

//go:embed testbed.py
var script []byte

// Preload is the library a program must load to see the testbed instead of
// the real /sys and /dev (Debian package umockdev).
const Preload = "libumockdev-preload.so.0"

// DefaultPython runs the testbed; python3-gi and gir1.2-umockdev-1.0 are
// Debian packages for the system's Python.
const DefaultPython = "/usr/bin/python3"

// Default USB identity of an emulated key: pid.codes' vendor ID with the
// product ID it keeps for tests, release 1.00.
const (
	DefaultVendorID  = 0x1209
	DefaultProductID = 0x0001
	DefaultRelease   = 0x0100
)

// DefaultStartTimeout bounds Start when its context has no deadline.
const DefaultStartTimeout = 30 * time.Second

// Packages names the Debian packages the testbed needs.
const Packages = "umockdev gir1.2-umockdev-1.0 python3-gi"

// Key is one emulated USB security key.
type Key struct {
	// Chip answers the key's CTAP2 and U2F requests (a *chip.Chip).
	Chip ctaphid.Handler
	// Serve configures the key's CTAPHID; Major defaults to 1. A chip that
	// reports its protocols (a U2F-only *chip.Chip) is served as such
	// without options.
	Serve ctaphid.ServeOptions

	// VendorID, ProductID and Release (bcdDevice) default to
	// DefaultVendorID, DefaultProductID and DefaultRelease.
	VendorID, ProductID, Release uint16
	// Manufacturer, Product and Serial are the USB strings; Manufacturer
	// defaults to "authbench" and Product to "authbench simulated chip".
	Manufacturer, Product, Serial string
}

// Options configure Start. The zero value is the default.
type Options struct {
	// Python is the interpreter that runs the testbed (default
	// DefaultPython).
	Python string
	// Log receives the testbed's diagnostics (default: discarded).
	Log *slog.Logger
}

// Device is where an emulated key appears.
type Device struct {
	Path    string // sysfs name of the HID interface, as driver/usb's Info.Path: "1-1:1.0"
	USB     string // usbfs node libusb opens: "/dev/bus/usb/001/002"
	Hidraw  string // hidraw node: "/dev/hidraw0"
	Bus     int    // USB bus number (1)
	Address int    // USB device address on the bus
	Serial  string // the USB serial number string
}

// Testbed is a running umockdev testbed with emulated keys.
type Testbed struct {
	dir string
	log *slog.Logger

	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan string
	exited  chan struct{}
	waitErr error
	stderr  *tail

	keys []Key

	mu        sync.Mutex     // serializes commands and guards what follows
	devices   []Device       // where each key is, or was last
	links     []*udphid.Conn // each key's link to testbed.py; nil while unplugged
	wg        sync.WaitGroup // the goroutines serving the chips
	closed    bool
	closeOnce sync.Once
	closeErr  error
}

// PowerCycler is the optional ability of a Key's Chip to be switched off
// and on (as *chip.Chip is): Plug power-cycles the chip, as plugging a key
// in powers it up.
type PowerCycler interface {
	PowerCycle()
}

// ErrMissing is wrapped by Start's error when the testbed cannot run here:
// the Python interpreter, python3-gi, UMockdev's typelib or the preload
// library is missing.
var ErrMissing = fmt.Errorf("umockdev: %w: install %s", device.ErrNotSupported, Packages)

// config is what testbed.py reads from its argument.
type config struct {
	Keys []keyConfig `json:"keys"`
}

type keyConfig struct {
	Chip         string `json:"chip"`
	Vendor       uint16 `json:"vendor"`
	Product      uint16 `json:"product"`
	Release      uint16 `json:"release"`
	Manufacturer string `json:"manufacturer"`
	ProductName  string `json:"product_name"`
	Serial       string `json:"serial"`
}

// ready is testbed.py's first line on stdout.
type ready struct {
	Dir   string  `json:"dir"`
	Error string  `json:"error"`
	Keys  []where `json:"keys"`
}

// Start serves each key's chip and builds a testbed in which the keys are
// plugged in. Close the Testbed to unplug everything and remove the
// testbed's directory.
//
// Errors: one wrapping ErrMissing (and so device.ErrNotSupported) when the
// testbed cannot run here; ctx's error, with device.ErrTimeout for a
// deadline (DefaultStartTimeout when ctx has none), when it does not come
// up in time; otherwise the testbed's own report of what failed.
func Start(ctx context.Context, keys []Key, opts Options) (*Testbed, error) {
	if len(keys) == 0 || len(keys) > 100 {
		return nil, fmt.Errorf("umockdev: %d keys, want 1 to 100", len(keys))
	}
	python := opts.Python
	if python == "" {
		python = DefaultPython
	}
	if _, err := exec.LookPath(python); err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrMissing, err)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}

	t := &Testbed{log: log, keys: keys, replies: make(chan string, 1), exited: make(chan struct{}), stderr: &tail{max: 8 << 10}}
	t.links = make([]*udphid.Conn, len(keys))
	cfg := config{}
	for i, k := range keys {
		if k.Chip == nil {
			t.stopServing()
			return nil, fmt.Errorf("umockdev: key %d has no chip", i)
		}
		addr, err := t.serve(i)
		if err != nil {
			t.stopServing()
			return nil, err
		}
		cfg.Keys = append(cfg.Keys, keyConfig{
			Chip:         addr,
			Vendor:       cmp.Or(k.VendorID, DefaultVendorID),
			Product:      cmp.Or(k.ProductID, DefaultProductID),
			Release:      cmp.Or(k.Release, DefaultRelease),
			Manufacturer: cmp.Or(k.Manufacturer, "authbench"),
			ProductName:  cmp.Or(k.Product, "authbench simulated chip"),
			Serial:       k.Serial,
		})
	}
	arg, err := json.Marshal(cfg)
	if err != nil {
		t.stopServing()
		return nil, err
	}

	if err := t.launch(python, arg); err != nil {
		t.stopServing()
		return nil, fmt.Errorf("umockdev: start %s: %w", python, err)
	}

	var line string
	select {
	case line = <-t.replies:
	case <-t.exited:
		t.stopServing()
		return nil, t.startFailure()
	case <-ctx.Done():
		t.Close()
		err := ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("umockdev: testbed did not come up: %w: %w", device.ErrTimeout, err)
		}
		return nil, fmt.Errorf("umockdev: testbed did not come up: %w", err)
	}
	var r ready
	if err := json.Unmarshal([]byte(line), &r); err != nil || r.Dir == "" || len(r.Keys) != len(keys) {
		t.Close()
		if r.Error != "" {
			return nil, fmt.Errorf("%w: %s", ErrMissing, r.Error)
		}
		return nil, fmt.Errorf("umockdev: testbed said %q", line)
	}
	t.dir = r.Dir
	for i, k := range r.Keys {
		t.devices = append(t.devices, k.device(cfg.Keys[i].Serial))
	}
	log.Debug("umockdev: testbed up", "dir", t.dir, "keys", len(keys))
	return t, nil
}

// where is how testbed.py describes a key's place on the bus.
type where struct {
	USBFS   string `json:"usbfs"`
	Hidraw  string `json:"hidraw"`
	Path    string `json:"path"`
	Bus     int    `json:"bus"`
	Address int    `json:"address"`
}

func (w where) device(serial string) Device {
	return Device{Path: w.Path, USB: w.USBFS, Hidraw: w.Hidraw, Bus: w.Bus, Address: w.Address, Serial: serial}
}

// serve opens key i's link to testbed.py and serves its chip there, with
// a CTAPHID state of its own, until the link is closed. It returns the
// address testbed.py sends the key's reports to.
func (t *Testbed) serve(i int) (string, error) {
	link, err := udphid.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("umockdev: key %d: %w", i, err)
	}
	t.links[i] = link
	k := t.keys[i]
	so := k.Serve
	if so.Major == 0 && so.Minor == 0 && so.Build == 0 {
		so.Major = 1
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		err := ctaphid.Serve(context.Background(), link, k.Chip, so)
		if err != nil && !errors.Is(err, device.ErrClosed) {
			t.log.Error("umockdev: serving key", "key", i, "err", err)
		}
	}()
	return link.LocalAddr().String(), nil
}

// launch starts testbed.py with its configuration. The script reaches
// Python through a pipe, so that nothing is written to disk and ps shows a
// short command line.
func (t *Testbed) launch(python string, arg []byte) error {
	sr, sw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer sr.Close() // the child has its own copy
	go func() {
		sw.Write(script) // fails at once if the child is gone
		sw.Close()
	}()
	t.cmd = exec.Command(python, "/dev/fd/3", string(arg))
	t.cmd.ExtraFiles = []*os.File{sr}
	t.cmd.Env = helperEnv(os.Environ())
	t.cmd.Stderr = t.stderr
	if t.stdin, err = t.cmd.StdinPipe(); err != nil {
		return err
	}
	stdout, err := t.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := t.cmd.Start(); err != nil {
		return err
	}
	go t.readReplies(stdout)
	go func() {
		t.waitErr = t.cmd.Wait()
		close(t.exited)
	}()
	return nil
}

// startFailure explains why testbed.py ended before it was ready.
func (t *Testbed) startFailure() error {
	msg := strings.TrimSpace(t.stderr.String())
	for _, missing := range []string{"No module named 'gi'", "Namespace UMockdev not available", "Typelib file for namespace 'UMockdev'"} {
		if strings.Contains(msg, missing) {
			return fmt.Errorf("%w (%s)", ErrMissing, lastLine(msg))
		}
	}
	return fmt.Errorf("umockdev: testbed ended before it was ready (%v): %s", t.waitErr, msg)
}

func (t *Testbed) readReplies(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		select {
		case t.replies <- sc.Text():
		case <-t.exited:
			return
		}
	}
}

// Dir returns the testbed's directory: UMOCKDEV_DIR for the programs.
func (t *Testbed) Dir() string { return t.dir }

// PID returns the process ID of the testbed's handler (the Python program),
// for monitoring.
func (t *Testbed) PID() int { return t.cmd.Process.Pid }

// Devices returns where each key appears (or last appeared, while it is
// unplugged), in the order given to Start.
func (t *Testbed) Devices() []Device {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Device(nil), t.devices...)
}

// Environ returns env (as os.Environ gives it) with the preload library
// added to LD_PRELOAD and UMOCKDEV_DIR set to the testbed, for a program
// that should see the emulated keys.
func (t *Testbed) Environ(env []string) []string {
	out := make([]string, 0, len(env)+2)
	preload := Preload
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "UMOCKDEV_DIR":
			continue
		case "LD_PRELOAD":
			if v != "" && !strings.Contains(v, Preload) {
				preload = Preload + ":" + v
			}
			continue
		}
		out = append(out, kv)
	}
	return append(out, "LD_PRELOAD="+preload, "UMOCKDEV_DIR="+t.dir)
}

// helperEnv is env without what would put testbed.py itself into a
// testbed.
func helperEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "UMOCKDEV_DIR":
			continue
		case "LD_PRELOAD":
			var keep []string
			for _, lib := range strings.FieldsFunc(v, func(r rune) bool { return r == ':' || r == ' ' }) {
				if !strings.Contains(filepath.Base(lib), "umockdev") {
					keep = append(keep, lib)
				}
			}
			if len(keep) > 0 {
				out = append(out, "LD_PRELOAD="+strings.Join(keep, ":"))
			}
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Unplug pulls key i (in Start's order) out of the bus: its chip stops
// being served, programs that have it open see it gone (libusb:
// LIBUSB_ERROR_NO_DEVICE and LIBUSB_TRANSFER_NO_DEVICE; hidraw: EIO, ENODEV
// and a hang-up), and it leaves sysfs and /dev. Unplugging a key that is
// out does nothing.
//
// Errors: one wrapping device.ErrClosed after Close or when the testbed
// ended; ctx's error when the testbed does not confirm in time.
func (t *Testbed) Unplug(ctx context.Context, i int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.keys) {
		return fmt.Errorf("umockdev: no key %d", i)
	}
	if t.links[i] == nil {
		return nil
	}
	if _, err := t.command(ctx, fmt.Sprintf("unplug %d", i)); err != nil {
		return err
	}
	err := t.links[i].Close() // ends serving the chip
	t.links[i] = nil
	return err
}

// Plug puts key i back into the bus after Unplug, as a person plugs a key
// in again: the chip is switched on anew (a PowerCycler is power-cycled,
// and its CTAPHID channels start afresh), and the key gets the bus's next
// address, so Devices reports a new USB node. Its port, its sysfs path and
// its hidraw node are the same as before.
//
// Errors: one when the key is plugged in; those of Unplug.
func (t *Testbed) Plug(ctx context.Context, i int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.keys) {
		return fmt.Errorf("umockdev: no key %d", i)
	}
	if t.closed {
		return fmt.Errorf("umockdev: plug %d: %w", i, device.ErrClosed)
	}
	if t.links[i] != nil {
		return fmt.Errorf("umockdev: key %d is plugged in", i)
	}
	if pc, ok := t.keys[i].Chip.(PowerCycler); ok {
		pc.PowerCycle()
	}
	addr, err := t.serve(i)
	if err != nil {
		return err
	}
	reply, err := t.command(ctx, fmt.Sprintf("plug %d %s", i, addr))
	if err != nil {
		t.links[i].Close()
		t.links[i] = nil
		return err
	}
	var w where
	if err := json.Unmarshal([]byte(reply), &w); err != nil {
		return fmt.Errorf("umockdev: plug %d: the testbed said %q", i, reply)
	}
	t.devices[i] = w.device(t.devices[i].Serial)
	return nil
}

// command sends one line to testbed.py and waits for its answer, which
// starts with "ok"; it returns the rest. Call with t.mu held.
func (t *Testbed) command(ctx context.Context, line string) (string, error) {
	select {
	case <-t.exited:
		return "", fmt.Errorf("umockdev: %s: %w: the testbed ended: %s", line, device.ErrClosed, lastLine(t.stderr.String()))
	default:
	}
	if t.closed {
		return "", fmt.Errorf("umockdev: %s: %w", line, device.ErrClosed)
	}
	if _, err := io.WriteString(t.stdin, line+"\n"); err != nil {
		return "", fmt.Errorf("umockdev: %s: %w: %v", line, device.ErrClosed, err)
	}
	select {
	case reply := <-t.replies:
		rest, ok := strings.CutPrefix(reply, "ok")
		if !ok {
			return "", fmt.Errorf("umockdev: %s: %s", line, reply)
		}
		return strings.TrimSpace(rest), nil
	case <-t.exited:
		return "", fmt.Errorf("umockdev: %s: %w: the testbed ended: %s", line, device.ErrClosed, lastLine(t.stderr.String()))
	case <-ctx.Done():
		return "", fmt.Errorf("umockdev: %s: %w", line, ctx.Err())
	}
}

// Close unplugs every key, ends the testbed, stops serving the chips and
// removes the testbed's directory. Programs still using the keys see them
// gone. It returns what went wrong, once; later calls return the same.
func (t *Testbed) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		var errs []error
		if t.cmd != nil && t.cmd.Process != nil {
			t.stdin.Close() // end of input ends testbed.py
			select {
			case <-t.exited:
			case <-time.After(10 * time.Second):
				t.cmd.Process.Kill()
				<-t.exited
				errs = append(errs, fmt.Errorf("umockdev: the testbed did not end in 10 s; killed it"))
			}
			if t.waitErr != nil && len(errs) == 0 {
				errs = append(errs, fmt.Errorf("umockdev: testbed: %v: %s", t.waitErr, lastLine(t.stderr.String())))
			}
		}
		t.stopServing()
		if t.dir != "" && strings.HasPrefix(filepath.Base(t.dir), "umockdev.") {
			os.RemoveAll(t.dir) // testbed.py removes it too; this covers a kill
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}

// stopServing closes every link, which ends serving the chips, and waits
// for that.
func (t *Testbed) stopServing() {
	t.mu.Lock()
	for i, l := range t.links {
		if l != nil {
			l.Close()
			t.links[i] = nil
		}
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = w.b[len(w.b)-w.max:]
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
