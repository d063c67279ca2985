package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// resetCmd is `authbench reset`.
type resetCmd struct {
	Device  string        `required:"" placeholder:"SELECTOR" help:"The chip: pcsc:N or pcsc:READER, usb[:VID:PID[:N]], udp[:HOST:PORT] or sim:chip."`
	Yes     bool          `help:"Erase without asking (for scripts and CI). Without it, reset asks on the terminal, and refuses when there is none."`
	Timeout time.Duration `default:"30s" placeholder:"DURATION" help:"How long to wait for the touch that confirms the reset."`
	JSON    bool          `help:"Print the outcome as JSON."`
}

// Help is the detail of `authbench help reset`.
func (*resetCmd) Help() string {
	return "authenticatorReset (CTAP 2.1 §6.6) erases every credential on the chip for good: every account it was " +
		"registered with loses it, and MitID must be told (block the chip there, then add it again). A chip takes a " +
		"reset only within 10 seconds of power-up, and only with a touch: plug it in (or put the card on the reader) " +
		"just before. U2F-only chips have no reset command; code devices have none in CDP/1. " +
		"Exit status: 0 erased; 1 refused, not confirmed or not supported; 2 no terminal to ask and no --yes; 3 unreachable."
}

// resetResult is what `authbench reset --json` prints.
type resetResult struct {
	Device string `json:"device"`
	Serial string `json:"serial,omitempty"`
	Reset  bool   `json:"reset"`
}

func (c *resetCmd) Run(ctx context.Context, e *env) error {
	t, err := openDevice(ctx, c.Device, targetOptions{})
	if err != nil {
		return err
	}
	defer t.close()
	if _, ok := t.target.(device.Chip); !ok {
		return usageError{fmt.Errorf("--device %s is a code device: CDP/1 has no reset (its secret is replaced only by provisioning in factory mode)", c.Device)}
	}
	serial := t.device.Serial
	if di, ok := t.target.(interface{ DeviceInfo() device.Info }); ok && serial == "" {
		serial = di.DeviceInfo().Serial
	}
	r, ok := t.target.(device.Resetter)
	if p, isP := t.target.(device.ProtocolReporter); !ok || isP && !p.Protocols().Has(device.ProtocolCTAP2) {
		return fmt.Errorf("%s: this chip cannot be reset: U2F (CTAP1), all it speaks, has no reset command", c.Device)
	}
	what := c.Device
	if serial != "" {
		what += " (serial " + serial + ")"
	}
	if !c.Yes {
		if !isTerminal(e.in()) {
			return usageError{fmt.Errorf("reset erases every credential on %s for good: run it on a terminal to be asked, or give --yes", what)}
		}
		fmt.Fprintf(e.stderr, "This erases every credential on chip %s, for good. Type yes to go on: ", what)
		line, _ := bufio.NewReader(e.in()).ReadString('\n')
		if strings.TrimSpace(strings.ToLower(line)) != "yes" {
			return fmt.Errorf("not confirmed: nothing was erased")
		}
	}
	rctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var once sync.Once
	rctx = ctap2.WithKeepalive(rctx, func(s ctap2.KeepaliveStatus) {
		if s == ctap2.StatusUPNeeded {
			once.Do(func() { fmt.Fprintln(e.stderr, "touch the chip now to confirm the reset") })
		}
	})
	if err := r.Reset(rctx); err != nil {
		return explainReset(ctx, c.Device, c.Timeout, err)
	}
	if c.JSON {
		return printJSON(e.stdout, resetResult{Device: c.Device, Serial: serial, Reset: true})
	}
	fmt.Fprintf(e.stdout, "chip %s reset: every credential on it is erased\n", what)
	return nil
}

// explainReset says why a reset did not happen and what to do.
func explainReset(ctx context.Context, sel string, timeout time.Duration, err error) error {
	var se *ctap2.StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case ctap2.CodeNotAllowed:
			return fmt.Errorf("%s refused the reset: a chip takes it only within 10 seconds of power-up (CTAP 2.1 §6.6). "+
				"Unplug the chip (take the card off the reader), plug it in again, run this command at once and touch the chip when it asks\n  (%v)", sel, err)
		case ctap2.CodeOperationDenied:
			return fmt.Errorf("%s refused the reset: the touch was denied; nothing was erased\n  (%v)", sel, err)
		case ctap2.CodeUserActionTimeout, ctap2.CodeKeepaliveCancel, ctap2.CodeActionTimeout:
			return fmt.Errorf("%s: nobody touched the chip in time; nothing was erased\n  (%v)", sel, err)
		case ctap2.CodeInvalidCommand:
			return fmt.Errorf("%s: this chip has no reset command\n  (%v)", sel, err)
		}
		return fmt.Errorf("%s refused the reset\n  (%v)", sel, err)
	}
	switch {
	case errors.Is(context.Cause(ctx), errInterrupted):
		return errInterrupted
	case errors.Is(err, device.ErrNotSupported):
		return fmt.Errorf("%s: this chip cannot be reset\n  (%v)", sel, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, device.ErrTimeout):
		return fmt.Errorf("%s: no touch within %v; nothing was erased (a chip takes a reset only within 10 s of power-up: plug it in again first)\n  (%v)", sel, timeout, err)
	}
	return unreachableError{explainDevice(sel, err)}
}
