package ctaphidtest_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/ctaphid/ctaphidtest"
)

func TestFaultyRaw(t *testing.T) {
	tests := []struct {
		name   string
		fault  ctaphidtest.Fault
		writes [][]byte
		want   [][]byte // what arrives at the other end, in order
	}{
		{"none", ctaphidtest.Fault{}, [][]byte{{1}, {2}}, [][]byte{{1}, {2}}},
		{"drop", ctaphidtest.Fault{Dir: ctaphidtest.Writes, N: 2, Kind: ctaphidtest.Drop}, [][]byte{{1}, {2}, {3}}, [][]byte{{1}, {3}}},
		{"duplicate", ctaphidtest.Fault{Dir: ctaphidtest.Writes, N: 1, Kind: ctaphidtest.Duplicate}, [][]byte{{1}, {2}}, [][]byte{{1}, {1}, {2}}},
		{"corrupt", ctaphidtest.Fault{Dir: ctaphidtest.Writes, N: 1, Kind: ctaphidtest.Corrupt, Byte: 1}, [][]byte{{1, 0x0F}}, [][]byte{{1, 0xF0}}},
		{"reorder", ctaphidtest.Fault{Dir: ctaphidtest.Writes, N: 1, Kind: ctaphidtest.Reorder}, [][]byte{{1}, {2}, {3}}, [][]byte{{2}, {1}, {3}}},
		{"wrong CID", ctaphidtest.Fault{Dir: ctaphidtest.Writes, N: 1, Kind: ctaphidtest.WrongCID}, [][]byte{{0, 0, 0, 1, 9}}, [][]byte{{0xFF, 0xFF, 0xFF, 0xFE, 9}}},
		{"chosen CID", ctaphidtest.Fault{Dir: ctaphidtest.Writes, N: 1, Kind: ctaphidtest.WrongCID, CID: 7}, [][]byte{{0, 0, 0, 1, 9}}, [][]byte{{0, 0, 0, 7, 9}}},
	}
	for _, tt := range tests {
		for _, dir := range []ctaphidtest.Direction{ctaphidtest.Writes, ctaphidtest.Reads} {
			name := tt.name + "/writes"
			if dir == ctaphidtest.Reads {
				name = tt.name + "/reads"
			}
			t.Run(name, func(t *testing.T) {
				leakCheck(t)
				a, b := ctaphid.NewPipe()
				defer a.Close()
				f := tt.fault
				f.Dir = dir
				var w, r interface {
					Write([]byte) (int, error)
					Read([]byte) (int, error)
				} = a, b
				if dir == ctaphidtest.Writes {
					w = ctaphidtest.NewFaulty(a, f)
				} else {
					r = ctaphidtest.NewFaulty(b, f)
				}
				for _, m := range tt.writes {
					if _, err := w.Write(m); err != nil {
						t.Fatal(err)
					}
				}
				buf := make([]byte, 64)
				for i, want := range tt.want {
					n, err := r.Read(buf)
					if err != nil || !bytes.Equal(buf[:n], want) {
						t.Fatalf("report %d: %x, %v; want %x", i, buf[:n], err, want)
					}
				}
			})
		}
	}
}

// TestFaultsOnTheWire injects faults between a host Conn and Serve and
// checks the error the host sees. Write 1 and read 1 are the INIT exchange.
func TestFaultsOnTheWire(t *testing.T) {
	w := func(n int, k ctaphidtest.FaultKind) ctaphidtest.Fault {
		return ctaphidtest.Fault{Dir: ctaphidtest.Writes, N: n, Kind: k, Byte: 10}
	}
	r := func(n int, k ctaphidtest.FaultKind) ctaphidtest.Fault {
		return ctaphidtest.Fault{Dir: ctaphidtest.Reads, N: n, Kind: k, Byte: 10}
	}
	tests := []struct {
		name  string
		fault ctaphidtest.Fault
		size  int // of the PING, 100 bytes = 2 reports, 200 = 4
		is    error
	}{
		{"continuation lost", w(3, ctaphidtest.Drop), 100, device.ErrTimeout}, // ERR_MSG_TIMEOUT
		{"continuation twice", w(3, ctaphidtest.Duplicate), 200, device.ErrProtocol},
		{"continuations swapped", w(3, ctaphidtest.Reorder), 200, device.ErrProtocol},
		{"request corrupted", w(2, ctaphidtest.Corrupt), 100, device.ErrProtocol}, // echo differs
		{"request on a wrong channel", w(2, ctaphidtest.WrongCID), 100, context.DeadlineExceeded},
		{"answer lost", r(3, ctaphidtest.Drop), 100, context.DeadlineExceeded},
		{"answer twice", r(2, ctaphidtest.Duplicate), 100, device.ErrProtocol},
		{"answer swapped", r(2, ctaphidtest.Reorder), 200, device.ErrProtocol},
		{"answer corrupted", r(2, ctaphidtest.Corrupt), 100, device.ErrProtocol},
		{"answer on a wrong channel", r(2, ctaphidtest.WrongCID), 100, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			host, dev := ctaphid.NewPipe()
			defer host.Close()
			sctx, stop := context.WithCancel(context.Background())
			serveErr := make(chan error, 1)
			go func() {
				serveErr <- ctaphid.Serve(sctx, dev, chip{}, ctaphid.ServeOptions{MessageTimeout: 5 * time.Millisecond})
			}()
			defer func() { stop(); <-serveErr }()

			octx, ocancel := context.WithTimeout(context.Background(), guard)
			defer ocancel()
			c, err := ctaphid.Open(octx, ctaphidtest.NewFaulty(host, tt.fault), ctaphid.Options{CancelWait: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Short enough to keep the test fast, long enough for an error
			// answer to arrive first.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err = c.Ping(ctx, bytes.Repeat([]byte{0x61}, tt.size))
			if !errors.Is(err, tt.is) {
				t.Errorf("Ping: %v, want %v", err, tt.is)
			}
		})
	}
}
