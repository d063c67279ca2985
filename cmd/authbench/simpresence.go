package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/authbench/authbench/sim/chip"
)

// parsePresence reads --presence: auto, deny, never or manual.
func parsePresence(s string) (chip.Presence, error) {
	switch s {
	case "", "auto":
		return chip.Auto, nil
	case "deny":
		return chip.Deny, nil
	case "never":
		return chip.Never, nil
	case "manual":
		return chip.Manual, nil
	}
	return chip.Auto, usageError{fmt.Errorf("--presence %q: want auto, deny, never or manual", s)}
}

// toucher is the finger of `authbench sim --presence manual`: it touches
// every simulated chip when a key is pressed on the terminal sim runs in
// (a line, when standard input is not a terminal) or when the process gets
// SIGUSR1, and tells on standard error when a chip waits for a touch.
type toucher struct {
	out io.Writer

	mu      sync.Mutex
	chips   []*chip.Chip
	prompts map[string]time.Time // last prompt per chip serial
}

func newToucher(out io.Writer) *toucher {
	return &toucher{out: out, prompts: map[string]time.Time{}}
}

func (t *toucher) add(c *chip.Chip) {
	t.mu.Lock()
	t.chips = append(t.chips, c)
	t.mu.Unlock()
}

// presence is the chip.Options.PresenceFunc of the chip with serial (read
// when first called): the manual policy, with a prompt at most every two
// seconds (U2F hosts ask again and again).
func (t *toucher) presence(serial *string) func(chip.Op) chip.Presence {
	return func(op chip.Op) chip.Presence {
		t.mu.Lock()
		last := t.prompts[*serial]
		now := time.Now()
		if now.Sub(last) > 2*time.Second {
			t.prompts[*serial] = now
			fmt.Fprintf(t.out, "chip %s waits for a touch (%s): press a key here, or run kill -USR1 %d\n", *serial, op, os.Getpid())
		}
		t.mu.Unlock()
		return chip.Manual
	}
}

// touch presses every chip's button.
func (t *toucher) touch(why string) {
	t.mu.Lock()
	chips := append([]*chip.Chip(nil), t.chips...)
	t.mu.Unlock()
	var touched []string
	for _, c := range chips {
		if c.Touch() {
			touched = append(touched, c.Serial())
		}
	}
	if len(touched) > 0 {
		fmt.Fprintf(t.out, "touched chip %s (%s)\n", strings.Join(touched, ", "), why)
	} else {
		fmt.Fprintf(t.out, "touched the chips (%s); none was waiting, a U2F request in the next 10 s takes the touch\n", why)
	}
}

// run touches on keys read from in and on SIGUSR1 until ctx ends. A
// terminal is put in a mode where each key counts at once (no Enter, no
// echo; Ctrl-C still interrupts) and put back when ctx ends.
func (t *toucher) run(ctx context.Context, in io.Reader) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(sigs)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigs:
				t.touch("SIGUSR1")
			}
		}
	}()
	keys := in
	if f, ok := in.(*os.File); ok {
		if restore, err := keyMode(f); err == nil {
			context.AfterFunc(ctx, restore)
			go func() {
				b := make([]byte, 16)
				for ctx.Err() == nil {
					n, err := f.Read(b)
					if err != nil {
						return
					}
					if n > 0 && ctx.Err() == nil {
						t.touch("key pressed")
					}
				}
			}()
			return
		}
	}
	go func() {
		sc := bufio.NewScanner(keys)
		for sc.Scan() {
			if ctx.Err() != nil {
				return
			}
			t.touch("line on standard input")
		}
	}()
}
