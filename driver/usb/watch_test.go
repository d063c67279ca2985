package usb

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
)

var (
	keyA  = device.Info{Path: "1-1:1.0", VendorID: 0x1050, ProductID: 0x0407, Serial: "A"}
	keyB  = device.Info{Path: "1-2:1.1", VendorID: 0x096e, ProductID: 0x0858, Serial: "B"}
	keyB2 = device.Info{Path: "1-2:1.1", VendorID: 0x096e, ProductID: 0x0858, Serial: "B2"} // another key in B's port
	keyC  = device.Info{Path: "2-1:1.0", VendorID: 0x20a0, ProductID: 0x42b1}
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name     string
		old, new []device.Info
		want     []Event
	}{
		{"nothing", nil, nil, nil},
		{"same", []device.Info{keyA, keyB}, []device.Info{keyB, keyA}, nil},
		{"first list", nil, []device.Info{keyC, keyA}, []Event{{Arrived, keyA}, {Arrived, keyC}}},
		{"all gone", []device.Info{keyC, keyA}, nil, []Event{{Departed, keyA}, {Departed, keyC}}},
		{"one arrives", []device.Info{keyA}, []device.Info{keyA, keyB}, []Event{{Arrived, keyB}}},
		{"swapped in the same port", []device.Info{keyA, keyB}, []device.Info{keyA, keyB2},
			[]Event{{Departed, keyB}, {Arrived, keyB2}}},
		{"departures first", []device.Info{keyC}, []device.Info{keyA}, []Event{{Departed, keyC}, {Arrived, keyA}}},
		{"model changes alone do not count", []device.Info{keyA}, []device.Info{{Path: keyA.Path, VendorID: keyA.VendorID, ProductID: keyA.ProductID, Serial: "A", Model: "YubiKey"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Diff(tt.old, tt.new); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEventStrings(t *testing.T) {
	if s := (Event{Arrived, keyA}).String(); s != "1-1:1.0: arrived" {
		t.Errorf("String = %q", s)
	}
	if Departed.String() != "departed" || Updated.String() != "updated" || EventKind(9).String() != "EventKind(9)" {
		t.Errorf("kind strings %q %q %q", Departed, Updated, EventKind(9))
	}
}

func TestWatch(t *testing.T) {
	lists := [][]device.Info{
		{keyA},
		{keyA},
		{keyA, keyB},
		{keyB},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	list := func(context.Context) ([]sighting, error) {
		l := lists[calls]
		calls++
		if calls == len(lists) {
			cancel() // the caller stops watching after the last list
		}
		return opened(l...), nil
	}
	var got []Event
	err := watch(ctx, time.Millisecond, list, func(ev Event) { got = append(got, ev) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("watch = %v, want context.Canceled", err)
	}
	want := []Event{{Arrived, keyA}, {Arrived, keyB}, {Departed, keyA}}
	if !reflect.DeepEqual(got, want) || calls != len(lists) {
		t.Errorf("events %v after %d lists, want %v", got, calls, want)
	}
}

func TestWatchListError(t *testing.T) {
	boom := errors.New("libusb: no")
	calls := 0
	list := func(context.Context) ([]sighting, error) {
		calls++
		if calls == 2 {
			return nil, boom
		}
		return opened(keyA), nil
	}
	var got []Event
	err := watch(context.Background(), time.Millisecond, list, func(ev Event) { got = append(got, ev) })
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Errorf("watch = %v with events %v", err, got)
	}
}

func TestWatchEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := watch(ctx, time.Hour, func(context.Context) ([]sighting, error) {
		t.Error("list called with an ended context")
		return nil, nil
	}, func(Event) {})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("watch = %v", err)
	}
}

// opened lists keys that could be opened.
func opened(infos ...device.Info) []sighting {
	s := make([]sighting, len(infos))
	for i, info := range infos {
		s[i] = sighting{info: info, opened: true}
	}
	return s
}

// shape is key as List shows it when it cannot open it: without strings.
func shape(key device.Info) sighting {
	key.Serial, key.Model = "", ""
	return sighting{info: key}
}

// TestWatchUnopened: a key listed before it can be opened is reported once
// it can, with its serial; one that cannot be opened at all is reported
// after heldPolls lists without its strings, and updated once it can be; a
// reported key that one list cannot open is not reported again.
func TestWatchUnopened(t *testing.T) {
	bareB := shape(keyB).info
	tests := []struct {
		name  string
		lists [][]sighting
		want  [][]Event // per list
	}{
		{"opened one list later", [][]sighting{
			opened(keyA),
			{opened(keyA)[0], shape(keyB)},
			opened(keyA, keyB),
		}, [][]Event{{{Arrived, keyA}}, nil, {{Arrived, keyB}}}},
		{"opened just in time", [][]sighting{
			{shape(keyB)},
			{shape(keyB)},
			opened(keyB),
		}, [][]Event{nil, nil, {{Arrived, keyB}}}},
		{"never opened", [][]sighting{
			{shape(keyB)},
			{shape(keyB)},
			{shape(keyB)},
			{shape(keyB)},
			nil,
		}, [][]Event{nil, nil, {{Arrived, bareB}}, nil, {{Departed, bareB}}}},
		{"opened after it was reported", [][]sighting{
			{shape(keyB), opened(keyA)[0]},
			{shape(keyB), opened(keyA)[0]},
			{shape(keyB), opened(keyA)[0]},
			opened(keyA, keyB),
			opened(keyA, keyB),
		}, [][]Event{{{Arrived, keyA}}, nil, {{Arrived, bareB}}, {{Updated, keyB}}, nil}},
		{"updates after departures, by path", [][]sighting{
			{shape(keyB), opened(keyC)[0]},
			{shape(keyB), opened(keyC)[0]},
			{shape(keyB), opened(keyC)[0]},
			opened(keyA, keyB),
		}, [][]Event{{{Arrived, keyC}}, nil, {{Arrived, bareB}}, {{Departed, keyC}, {Arrived, keyA}, {Updated, keyB}}}},
		{"not opened once", [][]sighting{
			opened(keyA, keyB),
			{opened(keyA)[0], shape(keyB)},
			{opened(keyA)[0], shape(keyB)},
			{opened(keyA)[0], shape(keyB)},
			opened(keyA, keyB),
		}, [][]Event{{{Arrived, keyA}, {Arrived, keyB}}, nil, nil, nil, nil}},
		{"held back, gone", [][]sighting{
			{shape(keyB)},
			nil,
			{shape(keyB)},
			{shape(keyB)},
			opened(keyB),
		}, [][]Event{nil, nil, nil, nil, {{Arrived, keyB}}}},
		{"another key in the place of an unopened one", [][]sighting{
			opened(keyB),
			{shape(keyB2)},
			opened(keyB2),
		}, [][]Event{{{Arrived, keyB}}, nil, {{Departed, keyB}, {Arrived, keyB2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w watcher
			for i, l := range tt.lists {
				if got := w.next(l); !reflect.DeepEqual(got, tt.want[i]) {
					t.Errorf("list %d: events %v, want %v", i, got, tt.want[i])
				}
			}
		})
	}
}
