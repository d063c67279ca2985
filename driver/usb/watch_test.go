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
	if Departed.String() != "departed" || EventKind(9).String() != "EventKind(9)" {
		t.Errorf("kind strings %q %q", Departed, EventKind(9))
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
	list := func(context.Context) ([]device.Info, error) {
		l := lists[calls]
		calls++
		if calls == len(lists) {
			cancel() // the caller stops watching after the last list
		}
		return l, nil
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
	list := func(context.Context) ([]device.Info, error) {
		calls++
		if calls == 2 {
			return nil, boom
		}
		return []device.Info{keyA}, nil
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
	err := watch(ctx, time.Hour, func(context.Context) ([]device.Info, error) {
		t.Error("list called with an ended context")
		return nil, nil
	}, func(Event) {})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("watch = %v", err)
	}
}
