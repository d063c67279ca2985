package ctaphidtest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
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
	delayed := func(dir ctaphidtest.Direction, n int, d time.Duration) ctaphidtest.Fault {
		return ctaphidtest.Fault{Dir: dir, N: n, Kind: ctaphidtest.Delay, Delay: d}
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
		// A continuation held past the device's transaction timeout: the
		// device drops the request and answers ERR_MSG_TIMEOUT (§11.2.5.2).
		{"continuation late", delayed(ctaphidtest.Writes, 3, 50*time.Millisecond), 100, device.ErrTimeout},
		{"answer late, within the deadline", delayed(ctaphidtest.Reads, 2, 20*time.Millisecond), 100, nil},
		{"answer later than the deadline", delayed(ctaphidtest.Reads, 2, time.Hour), 100, context.DeadlineExceeded},
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

// TestFaultyDelay: a delayed report arrives after the ones before it and
// before the ones after it; a read deadline or Close ends the wait.
func TestFaultyDelay(t *testing.T) {
	for _, dir := range []ctaphidtest.Direction{ctaphidtest.Writes, ctaphidtest.Reads} {
		t.Run(map[ctaphidtest.Direction]string{ctaphidtest.Writes: "writes", ctaphidtest.Reads: "reads"}[dir], func(t *testing.T) {
			leakCheck(t)
			a, b := ctaphid.NewPipe()
			defer a.Close()
			f := ctaphidtest.Fault{Dir: dir, N: 2, Kind: ctaphidtest.Delay, Delay: time.Millisecond}
			var w interface{ Write([]byte) (int, error) } = a
			var r interface{ Read([]byte) (int, error) } = b
			if dir == ctaphidtest.Writes {
				w = ctaphidtest.NewFaulty(a, f)
			} else {
				r = ctaphidtest.NewFaulty(b, f)
			}
			for _, m := range []byte{1, 2, 3} {
				if _, err := w.Write([]byte{m}); err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, 64)
			for _, want := range []byte{1, 2, 3} {
				if n, err := r.Read(buf); err != nil || n != 1 || buf[0] != want {
					t.Fatalf("read %x, %v; want %02x", buf[:n], err, want)
				}
			}
		})
	}
	t.Run("read deadline", func(t *testing.T) {
		leakCheck(t)
		a, b := ctaphid.NewPipe()
		defer a.Close()
		got := make(chan struct{})
		r := ctaphidtest.NewFaulty(signalRead{b, got}, ctaphidtest.Fault{Dir: ctaphidtest.Reads, N: 1, Kind: ctaphidtest.Delay, Delay: time.Hour})
		a.Write([]byte{7})
		errc := make(chan error, 1)
		go func() {
			_, err := r.Read(make([]byte, 64))
			errc <- err
		}()
		<-got // the report has arrived and is being held
		r.SetReadDeadline(time.Unix(1, 0))
		if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read: %v, want a deadline error", err)
		}
		r.SetReadDeadline(time.Time{})
		buf := make([]byte, 64)
		if n, err := r.Read(buf); err != nil || n != 1 || buf[0] != 7 {
			t.Fatalf("next Read: %x, %v", buf[:n], err)
		}
	})
	t.Run("close", func(t *testing.T) {
		leakCheck(t)
		a, b := ctaphid.NewPipe()
		defer b.Close()
		f := ctaphidtest.NewFaulty(a,
			ctaphidtest.Fault{Dir: ctaphidtest.Writes, N: 1, Kind: ctaphidtest.Delay, Delay: time.Hour},
			ctaphidtest.Fault{Dir: ctaphidtest.Reads, N: 1, Kind: ctaphidtest.Delay, Delay: time.Hour})
		b.Write([]byte{1})
		werr, rerr := make(chan error, 1), make(chan error, 1)
		go func() { _, err := f.Write([]byte{1}); werr <- err }()
		go func() { _, err := f.Read(make([]byte, 64)); rerr <- err }()
		// Both calls may not have started their hold yet; Close ends the
		// hold whenever it begins, and closes the pipe under the Read.
		f.Close()
		if err := <-werr; !errors.Is(err, device.ErrClosed) {
			t.Fatalf("Write: %v", err)
		}
		if err := <-rerr; !errors.Is(err, device.ErrClosed) {
			t.Fatalf("Read: %v", err)
		}
	})
}

// signalRead closes got after its first successful Read.
type signalRead struct {
	*ctaphid.PipeEnd
	got chan struct{}
}

func (s signalRead) Read(b []byte) (int, error) {
	n, err := s.PipeEnd.Read(b)
	if err == nil {
		close(s.got)
	}
	return n, err
}
