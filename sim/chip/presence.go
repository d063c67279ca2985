package chip

import (
	"context"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// Presence is a policy for the chip's button: what the simulated user does
// when the chip asks for a touch (test of user presence, CTAP 2.1 §5.2;
// FIDO U2F Raw Message Formats §5.1 "user presence"). The zero value is Auto.
type Presence struct {
	kind  presenceKind
	delay time.Duration
}

type presenceKind uint8

const (
	presenceAuto presenceKind = iota
	presenceDelay
	presenceDeny
	presenceNever
	presenceManual
)

// Presence policies.
var (
	// Auto approves at once, as if the user's finger were already on the
	// button.
	Auto = Presence{}
	// Deny refuses: CTAP2 answers CTAP2_ERR_OPERATION_DENIED (a reset or a
	// selection too); U2F keeps answering "test of user presence required"
	// (SW 6985).
	Deny = Presence{kind: presenceDeny}
	// Never leaves the button alone: CTAP2 requests wait, sending UPNEEDED
	// keepalives, until the host gives up (ctx ends) and then answer
	// CTAP2_ERR_KEEPALIVE_CANCEL; U2F answers 6985.
	Never = Presence{kind: presenceNever}
	// Manual waits for Chip.Touch: CTAP2 requests wait until a touch or
	// until ctx ends; U2F requests succeed if a touch happened during the
	// last 10 seconds (and use it up), else answer 6985.
	Manual = Presence{kind: presenceManual}
)

// Delay approves after d, with UPNEEDED keepalives meanwhile. U2F requests
// wait too, instead of answering 6985. d is real time, not the injected
// clock.
func Delay(d time.Duration) Presence {
	if d <= 0 {
		return Auto
	}
	return Presence{kind: presenceDelay, delay: d}
}

// String returns "auto", "deny", "never", "manual" or "delay(1s)".
func (p Presence) String() string {
	switch p.kind {
	case presenceDelay:
		return fmt.Sprintf("delay(%v)", p.delay)
	case presenceDeny:
		return "deny"
	case presenceNever:
		return "never"
	case presenceManual:
		return "manual"
	}
	return "auto"
}

// Op names the request a presence check is for; Options.PresenceFunc gets it.
type Op string

// Operations that ask for user presence.
const (
	OpMakeCredential  Op = "makeCredential"  // also a hit in the excludeList
	OpGetAssertion    Op = "getAssertion"    // only with option "up" true (the default)
	OpReset           Op = "reset"           // authenticatorReset
	OpSelection       Op = "selection"       // authenticatorSelection
	OpU2FRegister     Op = "u2fRegister"     // U2F_REGISTER
	OpU2FAuthenticate Op = "u2fAuthenticate" // U2F_AUTHENTICATE with control 0x03
)

// touchWindow is how long a touch given with Manual stays usable by a U2F
// request (which never waits).
const touchWindow = 10 * time.Second

// policy returns the presence policy for op.
func (c *Chip) policy(op Op) Presence {
	if c.opts.PresenceFunc != nil {
		return c.opts.PresenceFunc(op)
	}
	return c.opts.Presence
}

// errCanceled is the answer when the host gives up while the chip waits.
func errCanceled(ctx context.Context) error {
	return fmt.Errorf("chip: waiting for presence: %w (%w)", ctap2.ErrKeepaliveCancel, context.Cause(ctx))
}

var (
	errDenied    = fmt.Errorf("chip: presence: %w (%w)", ctap2.ErrOperationDenied, device.ErrPresenceDenied)
	errClosed    = fmt.Errorf("chip: %w", device.ErrClosed)
	errPowerLost = fmt.Errorf("chip: power cycled while waiting for presence: %w", ctap2.ErrKeepaliveCancel)
)

// waitPresence asks the simulated user for a touch (CTAP2: the chip blinks
// and waits). It returns nil when the user touched, an error wrapping
// ctap2.ErrOperationDenied when the policy denies, ctap2.ErrKeepaliveCancel
// when ctx ends or the chip is power cycled, and device.ErrClosed after
// Close. While it waits it reports ctap2.StatusUPNeeded through
// ctap2.Keepalive. It never holds c.mu while waiting.
func (c *Chip) waitPresence(ctx context.Context, op Op) error {
	p := c.policy(op)
	switch p.kind {
	case presenceAuto:
		return nil
	case presenceDeny:
		return errDenied
	}
	w, err := c.addWaiter()
	if err != nil {
		return err
	}
	defer c.doneWaiter()
	ctap2.Keepalive(ctx, ctap2.StatusUPNeeded)
	var fire <-chan time.Time
	var touch <-chan struct{}
	switch p.kind {
	case presenceDelay:
		t := time.NewTimer(p.delay)
		defer t.Stop()
		fire = t.C
	case presenceManual:
		touch = w.touch
	}
	select {
	case <-fire:
		return nil
	case <-touch:
		return nil
	case <-ctx.Done():
		return errCanceled(ctx)
	case <-w.power:
		return errPowerLost
	case <-w.closing:
		return errClosed
	}
}

// checkPresence is U2F's test of user presence (FIDO U2F Raw Message Formats
// §4.3, §5.1): U2F requests do not wait for a touch unless the policy is
// Delay; they answer "conditions not satisfied" and the host retries. It
// returns nil when the user is present, an error wrapping
// errPresenceRequired (answered as SW 6985) when not, and the errors of
// waitPresence for Delay.
func (c *Chip) checkPresence(ctx context.Context, op Op) error {
	p := c.policy(op)
	switch p.kind {
	case presenceAuto:
		return nil
	case presenceDelay:
		return c.waitPresence(ctx, op)
	case presenceManual:
		c.mu.Lock()
		t := c.touchedAt
		ok := !t.IsZero() && c.now().Sub(t) < touchWindow
		if ok {
			c.touchedAt = time.Time{}
		}
		c.mu.Unlock()
		if ok {
			return nil
		}
	}
	return errNoPresence
}

// waiter holds the channels a presence wait selects on.
type waiter struct {
	touch   <-chan struct{}
	power   <-chan struct{}
	closing <-chan struct{}
}

func (c *Chip) addWaiter() (waiter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return waiter{}, errClosed
	}
	c.waiters.Add(1)
	c.nwait++
	return waiter{touch: c.touch, power: c.power, closing: c.closing}, nil
}

func (c *Chip) doneWaiter() {
	c.mu.Lock()
	c.nwait--
	c.mu.Unlock()
	c.waiters.Done()
}

// Touch presses the chip's button, for the Manual policy. If requests are
// waiting for presence they all go on; otherwise the touch is kept for the
// next U2F request within 10 seconds. It reports whether a request was
// waiting.
func (c *Chip) Touch() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nwait > 0 {
		close(c.touch)
		c.touch = make(chan struct{})
		return true
	}
	c.touchedAt = c.now()
	return false
}
