package ctaphid_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
)

func TestPipePreservesReports(t *testing.T) {
	leakCheck(t)
	a, b := ctaphid.NewPipe()
	defer a.Close()
	for _, r := range [][]byte{{1}, {2, 2}, bytes.Repeat([]byte{3}, 64)} {
		if n, err := a.Write(r); n != len(r) || err != nil {
			t.Fatal(n, err)
		}
	}
	buf := make([]byte, 100)
	for _, want := range [][]byte{{1}, {2, 2}, bytes.Repeat([]byte{3}, 64)} {
		n, err := b.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("Read = %x, %v; want %x", buf[:n], err, want)
		}
	}
	// And the other way.
	b.Write([]byte{9})
	if n, err := a.Read(buf); err != nil || !bytes.Equal(buf[:n], []byte{9}) {
		t.Fatal(n, err)
	}
	// A short buffer gets the report cut, and an error.
	a.Write([]byte{1, 2, 3})
	if n, err := b.Read(buf[:2]); n != 2 || !errors.Is(err, io.ErrShortBuffer) {
		t.Errorf("short read: %d, %v", n, err)
	}
}

func TestPipeCloseUnblocks(t *testing.T) {
	leakCheck(t)
	a, b := ctaphid.NewPipe()
	errc := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 64))
		errc <- err
	}()
	a.Write([]byte{1}) // discarded by Close if not read yet, or read: either way no hang
	a.Close()
	for range 2 {
		_, err := b.Read(make([]byte, 64))
		if !errors.Is(err, device.ErrClosed) {
			t.Errorf("Read after Close: %v", err)
		}
	}
	if err := <-errc; err != nil && !errors.Is(err, device.ErrClosed) {
		t.Errorf("pending Read: %v", err)
	}
	if _, err := b.Write([]byte{1}); !errors.Is(err, device.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

func TestPipeReadDeadline(t *testing.T) {
	leakCheck(t)
	a, b := ctaphid.NewPipe()
	defer a.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 64))
		errc <- err
	}()
	b.SetReadDeadline(time.Now().Add(time.Millisecond))
	err := <-errc
	var te interface{ Timeout() bool }
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &te) || !te.Timeout() {
		t.Fatalf("Read past the deadline: %v", err)
	}
	b.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := b.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with a past deadline: %v", err)
	}
	b.SetReadDeadline(time.Now().Add(time.Hour))
	b.SetReadDeadline(time.Time{})
	a.Write([]byte{5})
	if n, err := b.Read(make([]byte, 64)); n != 1 || err != nil {
		t.Fatalf("Read after clearing the deadline: %d, %v", n, err)
	}
}

func TestHub(t *testing.T) {
	leakCheck(t)
	dev, hosts := ctaphid.NewHub(3)
	defer dev.Close()
	buf := make([]byte, 64)
	// Every host hears the device.
	dev.Write([]byte{1})
	for i, h := range hosts {
		if n, err := h.Read(buf); err != nil || !bytes.Equal(buf[:n], []byte{1}) {
			t.Fatalf("host %d: %x, %v", i, buf[:n], err)
		}
	}
	// The device hears every host.
	for i, h := range hosts {
		h.Write([]byte{byte(10 + i)})
		if n, err := dev.Read(buf); err != nil || !bytes.Equal(buf[:n], []byte{byte(10 + i)}) {
			t.Fatalf("from host %d: %x, %v", i, buf[:n], err)
		}
	}
	// A host that leaves does not stop the others.
	hosts[1].Close()
	if _, err := hosts[1].Read(buf); !errors.Is(err, device.ErrClosed) {
		t.Errorf("closed host Read: %v", err)
	}
	if _, err := hosts[1].Write([]byte{1}); !errors.Is(err, device.ErrClosed) {
		t.Errorf("closed host Write: %v", err)
	}
	if _, err := dev.Write([]byte{2}); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		if n, err := hosts[i].Read(buf); err != nil || !bytes.Equal(buf[:n], []byte{2}) {
			t.Fatalf("host %d: %x, %v", i, buf[:n], err)
		}
	}
	// Closing the device closes everyone.
	dev.Close()
	if _, err := hosts[0].Read(buf); !errors.Is(err, device.ErrClosed) {
		t.Errorf("host Read after the device closed: %v", err)
	}
	if _, err := hosts[2].Write([]byte{1}); !errors.Is(err, device.ErrClosed) {
		t.Errorf("host Write after the device closed: %v", err)
	}
}

// A Conn over a transport that cannot be interrupted keeps its reader until
// the transport is closed; Close does not wait for it.
type plainRW struct{ rw io.ReadWriteCloser }

func (p plainRW) Read(b []byte) (int, error)  { return p.rw.Read(b) }
func (p plainRW) Write(b []byte) (int, error) { return p.rw.Write(b) }

func TestConnOverPlainReadWriter(t *testing.T) {
	leakCheck(t)
	host := startDevice(t, &handler{}, ctaphid.ServeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	c, err := ctaphid.Open(ctx, plainRW{host}, ctaphid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx, []byte("plain")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	host.Close() // ends the reader; leakCheck verifies
}
