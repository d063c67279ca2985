package usb_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/driver/usb"
)

// TestEmulatedListWhileReplugging lists the emulated bus in a tight loop
// while its key is unplugged and plugged in again, over and over: a list
// that opens the key just as it leaves gets a clean error or a list without
// it, and the process (which runs with umockdev's preload library) lives
// on. AUTHBENCH_USB_REPLUGS sets the number of replugs (default 25).
func TestEmulatedListWhileReplugging(t *testing.T) {
	replugs := 25
	if s := os.Getenv("AUTHBENCH_USB_REPLUGS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("AUTHBENCH_USB_REPLUGS=%q: want a positive number", s)
		}
		replugs = n
	}
	bed, chips := emulatedBus(t, 1, ctaphid.ServeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), guard+time.Duration(replugs)*100*time.Millisecond)
	defer cancel()
	serial := chips[0].Serial()

	stop := make(chan struct{})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		outcomes = map[string]int{} // what the lists saw
		bad      []string
	)
	for range 2 { // two listers, as Watch and a CLI's list at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				list, err := usb.List(ctx)
				var outcome string
				switch {
				case err != nil:
					outcome = "error"
					if !errors.Is(err, device.ErrRemoved) && !errors.Is(err, device.ErrNotFound) {
						outcome = err.Error()
					}
				case len(list) == 0:
					outcome = "no key"
				case len(list) == 1 && list[0].Path == "1-1:1.0" && list[0].Serial == serial:
					outcome = "the key"
				case len(list) == 1 && list[0].Path == "1-1:1.0" && list[0].Serial == "":
					outcome = "the key without strings"
				default:
					outcome = fmt.Sprintf("%+v", list)
				}
				mu.Lock()
				outcomes[outcome]++
				if outcomes[outcome] == 1 && !strings.HasPrefix(outcome, "the key") && outcome != "no key" && outcome != "error" {
					bad = append(bad, outcome)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range replugs {
		if err := bed.Unplug(ctx, 0); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("unplug %d: %v", i, err)
		}
		// Gone for a moment, then in for long enough that some lists
		// find the key; each unplug meets lists at different points.
		time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
		if err := bed.Plug(ctx, 0); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("plug %d: %v", i, err)
		}
		time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d replugs; lists: %v", replugs, outcomes)
	for _, o := range bad {
		t.Errorf("a List while replugging: %s", o)
	}
	if outcomes["the key"] == 0 {
		t.Error("no List saw the key while replugging: the test did not race")
	}
	// Afterwards the key is there, and it answers.
	ch, err := usb.Open(ctx, usb.Selector{}, usb.Options{})
	if err != nil {
		t.Fatalf("Open after replugging: %v", err)
	}
	defer ch.Close()
	if _, err := ch.Info(ctx); err != nil {
		t.Fatalf("getInfo after replugging: %v", err)
	}
}
