package vicc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/internal/pcscdtest"
	"github.com/authbench/authbench/internal/testenv"
)

// echoCard answers every APDU with its INS byte followed by 9000.
type echoCard struct {
	mu     sync.Mutex
	resets int
}

func (c *echoCard) Process(ctx context.Context, apdu []byte) []byte {
	return []byte{apdu[1], 0x90, 0x00}
}

func (c *echoCard) Reset() {
	c.mu.Lock()
	c.resets++
	c.mu.Unlock()
}

// vpcdSide plays pcscd's vpcd driver on one end of a pipe.
type vpcdSide struct{ c net.Conn }

func (v vpcdSide) send(t *testing.T, msg []byte) {
	t.Helper()
	out := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
	if _, err := v.c.Write(append(out, msg...)); err != nil {
		t.Fatal(err)
	}
}

func (v vpcdSide) recv(t *testing.T) []byte {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(v.c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(v.c, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProtocol(t *testing.T) {
	card := &echoCard{}
	c := New("unused", card, Options{ATR: []byte{0x3B, 0x00}})
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- c.RunOnce(context.Background(), a) }()
	v := vpcdSide{b}

	v.send(t, []byte{ctrlOn})
	<-c.Ready()
	v.send(t, []byte{ctrlATR})
	if got := v.recv(t); !bytes.Equal(got, []byte{0x3B, 0x00}) {
		t.Fatalf("ATR = % x", got)
	}
	v.send(t, []byte{0x00, 0xA4, 0x04, 0x00})
	if got := v.recv(t); !bytes.Equal(got, []byte{0xA4, 0x90, 0x00}) {
		t.Fatalf("APDU answer = % x", got)
	}
	v.send(t, []byte{ctrlReset})
	v.send(t, []byte{ctrlATR})
	v.recv(t)
	b.Close()
	if err := <-done; err == nil {
		t.Fatal("RunOnce returned nil after the peer closed")
	}
	st := c.Stats()
	if st.APDUs != 1 || st.Polls != 2 || st.Connects != 1 {
		t.Fatalf("stats = %+v", st)
	}
	card.mu.Lock()
	defer card.mu.Unlock()
	if card.resets != 2 { // one from the reset message, one at the end
		t.Fatalf("resets = %d, want 2", card.resets)
	}
}

func TestFaultRemove(t *testing.T) {
	c := New("unused", &echoCard{}, Options{Fault: func(n int, _ []byte) Fault {
		if n == 2 {
			return FaultRemove
		}
		return FaultNone
	}})
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- c.RunOnce(context.Background(), a) }()
	v := vpcdSide{b}
	v.send(t, []byte{0x00, 0x01, 0x00, 0x00})
	v.recv(t)
	v.send(t, []byte{0x00, 0x02, 0x00, 0x00})
	err := <-done
	if !errors.Is(err, device.ErrRemoved) {
		t.Fatalf("err = %v, want ErrRemoved", err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	// Nothing listens on this port: Run keeps retrying until ctx ends.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := New(addr, &echoCard{}, Options{Retry: time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

func TestReconnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := New(l.Addr().String(), &echoCard{}, Options{Retry: time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for i := 0; i < 3; i++ { // pcscd "restarts" twice
		conn, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		v := vpcdSide{conn}
		v.send(t, []byte{0x00, 0x10, 0x00, 0x00})
		if got := v.recv(t); got[0] != 0x10 {
			t.Fatalf("answer % x", got)
		}
		conn.Close()
	}
	cancel()
	<-done
	if got := c.Stats().Connects; got < 3 {
		t.Fatalf("connects = %d, want ≥ 3", got)
	}
}

// TestThroughPCSCD exposes the card to a private pcscd and talks to it with
// pyscard, a PC/SC client we did not write.
func TestThroughPCSCD(t *testing.T) {
	d := pcscdtest.Start(t)
	py := testenv.LookPath(t, "python3-pyscard", "/usr/bin/python3", "apt-get install python3-pyscard")
	if err := exec.Command(py, "-c", "import smartcard").Run(); err != nil {
		testenv.Missing(t, "python3-pyscard", "python module smartcard not importable; apt-get install python3-pyscard")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := New(d.Addrs[0], &echoCard{}, Options{})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("vpcd never spoke to the card on %s; %s", d.Addrs[0], d.Report())
	}
	script := `
from smartcard.System import readers
r = [x for x in readers() if str(x) == "` + pcscdtest.Readers[0] + `"][0]
c = r.createConnection(); c.connect()
d, s1, s2 = c.transmit([0x00, 0x42, 0x00, 0x00])
print("%02x%02x%02x" % (d[0], s1, s2))
`
	cmd := exec.Command(py, "-c", script)
	cmd.Env = d.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pyscard: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "429000" {
		t.Fatalf("pyscard saw %q, want 429000", got)
	}
	cancel()
	<-done
}

// TestAnswerFaults: what vpcd receives for the second APDU under each fault
// that spoils an answer; the first and third are answered normally.
func TestAnswerFaults(t *testing.T) {
	tests := []struct {
		fault Fault
		opts  Options
		want  []byte
	}{
		{FaultNone, Options{}, []byte{0x02, 0x90, 0x00}},
		{FaultDelay, Options{Delay: time.Millisecond}, []byte{0x02, 0x90, 0x00}},
		{FaultGarbage, Options{Rand: bytes.NewReader([]byte{0xDE, 0xAD, 0xBE, 0xEF})}, []byte{0xDE, 0xAD, 0xBE}},
		{FaultTruncate, Options{}, []byte{0x90}},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			card := &echoCard{}
			opts := tt.opts
			opts.Fault = func(n int, _ []byte) Fault {
				if n == 2 {
					return tt.fault
				}
				return FaultNone
			}
			c := New("unused", card, opts)
			a, b := net.Pipe()
			done := make(chan error, 1)
			go func() { done <- c.RunOnce(context.Background(), a) }()
			v := vpcdSide{b}
			for i, want := range [][]byte{{0x01, 0x90, 0x00}, tt.want, {0x03, 0x90, 0x00}} {
				v.send(t, []byte{0x00, byte(i + 1), 0x00, 0x00})
				if got := v.recv(t); !bytes.Equal(got, want) {
					t.Fatalf("APDU %d answered % x, want % x", i+1, got, want)
				}
			}
			b.Close()
			<-done
			if st := c.Stats(); st.APDUs != 3 {
				t.Fatalf("stats %+v: the card processed %d APDUs, want 3", st, st.APDUs)
			}
		})
	}
}

// TestFaultDelayEndsWithContext: a Conn whose context ends while it holds a
// delayed answer closes the connection without answering.
func TestFaultDelayEndsWithContext(t *testing.T) {
	c := New("unused", &echoCard{}, Options{Delay: time.Hour, Fault: func(int, []byte) Fault { return FaultDelay }})
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.RunOnce(ctx, a) }()
	v := vpcdSide{b}
	v.send(t, []byte{0x00, 0x01, 0x00, 0x00})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("RunOnce = %v, want context.Canceled", err)
	}
	if _, err := io.ReadFull(b, make([]byte, 2)); err == nil {
		t.Fatal("vpcd read an answer")
	}
}

// TestFaultGarbageRandFails: when Options.Rand runs dry the connection ends
// with an error rather than an invented answer.
func TestFaultGarbageRandFails(t *testing.T) {
	c := New("unused", &echoCard{}, Options{Rand: bytes.NewReader(nil), Fault: func(int, []byte) Fault { return FaultGarbage }})
	a, b := net.Pipe()
	defer b.Close()
	done := make(chan error, 1)
	go func() { done <- c.RunOnce(context.Background(), a) }()
	vpcdSide{b}.send(t, []byte{0x00, 0x01, 0x00, 0x00})
	if err := <-done; !errors.Is(err, io.EOF) {
		t.Fatalf("RunOnce = %v, want the reader's EOF", err)
	}
	if got := Fault(42).String(); got != "Fault(42)" {
		t.Fatalf("String = %q", got)
	}
}
