package udphid

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
)

func TestRoundTrip(t *testing.T) {
	dev, err := Listen("127.0.0.1:0", "127.0.0.1:1") // peer learned from the first report
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	host, err := Dial(dev.LocalAddr().String(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()

	out := bytes.Repeat([]byte{0xAB}, ReportSize)
	if _, err := host.Write(out); err != nil {
		t.Fatal(err)
	}
	in := make([]byte, ReportSize)
	if _, err := dev.Read(in); err != nil || !bytes.Equal(in, out) {
		t.Fatalf("device read % x, %v", in[:4], err)
	}
	out[0] = 0xCD
	if _, err := dev.Write(out); err != nil {
		t.Fatal(err)
	}
	if _, err := host.Read(in); err != nil || in[0] != 0xCD {
		t.Fatalf("host read % x, %v", in[:4], err)
	}
	if _, err := host.Write(out[:10]); err == nil {
		t.Fatal("short report accepted")
	}
}

func TestReadDeadlineAndClose(t *testing.T) {
	c, err := Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := c.Read(make([]byte, ReportSize)); !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	c.SetReadDeadline(time.Time{})
	done := make(chan error)
	go func() { _, err := c.Read(make([]byte, ReportSize)); done <- err }()
	c.Close()
	if err := <-done; !errors.Is(err, device.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}
