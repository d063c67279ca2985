package usb

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/authbench/authbench/device"
)

// DefaultWatchInterval is how often Watch lists the keys when given no
// interval.
const DefaultWatchInterval = time.Second

// heldPolls is how many lists in a row Watch sees a key it cannot open
// before it reports the key's arrival without its strings. A key is listed
// before it can be opened (on Linux the node exists before udev gives the
// user access to it), and one list later it usually can; a key the user
// may not open at all is still reported, a few lists late.
const heldPolls = 3

// EventKind says whether a key arrived, departed or was identified.
type EventKind int

// Kinds of Event.
const (
	Arrived EventKind = iota + 1
	Departed
	// Updated: a key reported without its model and serial (Watch could
	// not open it) was opened since; Info has its strings now.
	Updated
)

func (k EventKind) String() string {
	switch k {
	case Arrived:
		return "arrived"
	case Departed:
		return "departed"
	case Updated:
		return "updated"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a key that arrived, departed or was updated between two lists.
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
// A key that cannot be opened is listed with only what its descriptors say
// (see List). Watch holds back such an arrival until the key can be opened
// and its model and serial read, for up to three lists (heldPolls), then
// reports it as it is; should the key be opened later, an Updated event
// gives its strings. A key already reported is not reported again when one
// list cannot open it.
//
// Watch returns when ctx ends, with ctx.Err(), or when List fails, with its
// error (device.ErrNotSupported without cgo).
func Watch(ctx context.Context, interval time.Duration, f func(Event)) error {
	return watch(ctx, interval, sight, f)
}

// sighting is a key as one list found it.
type sighting struct {
	info   device.Info
	opened bool // false: info has only what the descriptors say
}

// watch is Watch over any list function.
func watch(ctx context.Context, interval time.Duration, list func(context.Context) ([]sighting, error), f func(Event)) error {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var w watcher
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		cur, err := list(ctx)
		if err != nil {
			return err
		}
		for _, ev := range w.next(cur) {
			f(ev)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// place is where a key is and what kind it is, without its serial: what
// Watch can tell of a key it cannot open.
type place struct {
	path     string
	vid, pid uint16
}

func placeOf(info device.Info) place { return place{info.Path, info.VendorID, info.ProductID} }

// watcher is Watch's memory between two lists.
type watcher struct {
	known []device.Info  // the keys reported present
	bare  map[place]bool // those of known reported without their strings
	held  map[place]int  // keys not yet opened nor reported: lists seen in a row
}

// next takes one list and returns the events since the one before:
// departures, then arrivals and updates, each ordered by path.
func (w *watcher) next(cur []sighting) []Event {
	was := make(map[place]device.Info, len(w.known))
	for _, info := range w.known {
		was[placeOf(info)] = info
	}
	old := slices.Clone(w.known)
	now := make([]device.Info, 0, len(cur))
	bare := map[place]bool{}
	held := map[place]int{}
	var updated []Event
	for _, s := range cur {
		p := placeOf(s.info)
		prev, known := was[p]
		switch {
		case s.opened && known && w.bare[p]:
			// Reported without strings, opened now: the same key, identified.
			for i := range old {
				if placeOf(old[i]) == p {
					old[i] = s.info
				}
			}
			updated = append(updated, Event{Kind: Updated, Info: s.info})
			now = append(now, s.info)
		case s.opened:
			now = append(now, s.info)
		case known:
			// Not opened this time: as far as Watch can tell, the key it knew.
			now = append(now, prev)
			bare[p] = w.bare[p]
		case w.held[p]+1 < heldPolls:
			held[p] = w.held[p] + 1
		default:
			now = append(now, s.info)
			bare[p] = true
		}
	}
	w.known, w.bare, w.held = now, bare, held
	evs := Diff(old, now)
	if len(updated) == 0 {
		return evs
	}
	evs = append(evs, updated...)
	sort.SliceStable(evs, func(i, j int) bool {
		ki, kj := evs[i].Kind == Departed, evs[j].Kind == Departed
		if ki != kj {
			return ki
		}
		return evs[i].Info.Path < evs[j].Info.Path
	})
	return evs
}
