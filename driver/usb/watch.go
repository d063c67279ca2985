package usb

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/authbench/authbench/device"
)

// DefaultWatchInterval is how often Watch lists the keys when given no
// interval.
const DefaultWatchInterval = time.Second

// EventKind says whether a key arrived or departed.
type EventKind int

// Kinds of Event.
const (
	Arrived EventKind = iota + 1
	Departed
)

func (k EventKind) String() string {
	switch k {
	case Arrived:
		return "arrived"
	case Departed:
		return "departed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a key that arrived or departed between two lists.
type Event struct {
	Kind EventKind
	Info device.Info
}

func (e Event) String() string { return fmt.Sprintf("%s: %s", e.Info.Path, e.Kind) }

// identity is what makes two list entries the same key: where it is and
// what it says it is. A key unplugged and plugged into the same port
// between two lists is not noticed; another key in its place is.
type identity struct {
	path     string
	vid, pid uint16
	serial   string
}

func identify(info device.Info) identity {
	return identity{info.Path, info.VendorID, info.ProductID, info.Serial}
}

// Diff returns what changed from old to new: first the keys that departed,
// then those that arrived, each ordered by path.
func Diff(old, new []device.Info) []Event {
	had := make(map[identity]bool, len(old))
	for _, info := range old {
		had[identify(info)] = true
	}
	has := make(map[identity]bool, len(new))
	for _, info := range new {
		has[identify(info)] = true
	}
	var gone, came []Event
	for _, info := range old {
		if !has[identify(info)] {
			gone = append(gone, Event{Kind: Departed, Info: info})
		}
	}
	for _, info := range new {
		if !had[identify(info)] {
			came = append(came, Event{Kind: Arrived, Info: info})
		}
	}
	byPath := func(ev []Event) {
		sort.SliceStable(ev, func(i, j int) bool { return ev[i].Info.Path < ev[j].Info.Path })
	}
	byPath(gone)
	byPath(came)
	return append(gone, came...)
}

// Watch lists the keys every interval (zero means DefaultWatchInterval) and
// calls f, in the caller's goroutine, for each change Diff finds; the keys
// present at the start are reported as arrivals. gousb has no hotplug
// events, so this polls.
//
// Watch returns when ctx ends, with ctx.Err(), or when List fails, with its
// error (device.ErrNotSupported without cgo).
func Watch(ctx context.Context, interval time.Duration, f func(Event)) error {
	return watch(ctx, interval, List, f)
}

// watch is Watch over any list function.
func watch(ctx context.Context, interval time.Duration, list func(context.Context) ([]device.Info, error), f func(Event)) error {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var known []device.Info
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		cur, err := list(ctx)
		if err != nil {
			return err
		}
		for _, ev := range Diff(known, cur) {
			f(ev)
		}
		known = cur
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
