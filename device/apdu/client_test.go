package apdu_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/apdu/apdutest"
	"github.com/authbench/authbench/device/ctap2"
)

type transmitFunc func([]byte) ([]byte, error)

func (f transmitFunc) Transmit(b []byte) ([]byte, error) { return f(b) }

// playback returns a strict Playback of "> cmd", "< resp" pairs (hex) that
// must be played to the end.
func playback(t *testing.T, steps ...string) *apdutest.Playback {
	t.Helper()
	var tr apdutest.Transcript
	for i := 0; i+1 < len(steps); i += 2 {
		tr = append(tr, apdutest.Exchange{Command: unhex(t, steps[i]), Response: unhex(t, steps[i+1])})
	}
	p := apdutest.NewPlayback(tr)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

const selectLe = "00a4040008a0000006472f0001 00"

func TestClientSelect(t *testing.T) {
	ctx := context.Background()
	t.Run("answer without Le", func(t *testing.T) {
		c := apdu.NewClient(playback(t,
			selectLe, "6700",
			"00a4040008a0000006472f0001", "5532465f5632 9000"), apdu.ClientOptions{})
		if v, err := c.Select(ctx); err != nil || v != apdu.VersionU2F {
			t.Fatalf("Select = %q, %v", v, err)
		}
	})
	t.Run("no applet", func(t *testing.T) {
		c := apdu.NewClient(playback(t, selectLe, "6a82"), apdu.ClientOptions{})
		v, err := c.Select(ctx)
		var se *apdu.StatusError
		if v != "" || !errors.As(err, &se) || se.SW != 0x6A82 || !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("Select = %q, %v", v, err)
		}
	})
	t.Run("FIDO_2_1", func(t *testing.T) {
		c := apdu.NewClient(playback(t, selectLe, "4649444f5f325f31 9000"), apdu.ClientOptions{})
		if v, err := c.Select(ctx); v != "FIDO_2_1" || err != nil {
			t.Fatalf("Select = %q, %v", v, err)
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		c := apdu.NewClient(playback(t, selectLe, "4649444f 9000"), apdu.ClientOptions{})
		v, err := c.Select(ctx)
		if v != "FIDO" || !errors.Is(err, device.ErrNotSupported) {
			t.Fatalf("Select = %q, %v", v, err)
		}
	})
}

func TestClientTransceive(t *testing.T) {
	read := &apdu.Command{INS: 0xB0, Ne: 256}
	tests := []struct {
		name  string
		opts  apdu.ClientOptions
		cmd   *apdu.Command
		steps []string
		data  string
		sw    uint16
		err   error
	}{
		{"6Cxx resend", apdu.ClientOptions{}, read,
			[]string{"00b0000000", "6c04", "00b0000004", "01020304 9000"}, "01020304", 0x9000, nil},
		{"6Cxx only once", apdu.ClientOptions{}, read,
			[]string{"00b0000000", "6c04", "00b0000004", "6c02"}, "", 0x6C02, nil},
		{"61xx collected", apdu.ClientOptions{}, read,
			[]string{"00b0000000", "0102 6102", "00c0000002", "0304 6101", "00c0000001", "05 6a82"}, "0102030405", 0x6A82, nil},
		{"61xx then 6Cxx", apdu.ClientOptions{GetResponseCLA: 0x80}, read,
			[]string{"00b0000000", "0102 6100", "80c0000000", "6c01", "80c0000001", "03 9000"}, "010203", 0x9000, nil},
		{"Ne capped at 256 without Extended", apdu.ClientOptions{}, &apdu.Command{INS: 0xB0, Ne: 65536},
			[]string{"00b0000000", "9000"}, "", 0x9000, nil},
		{"extended", apdu.ClientOptions{Extended: true}, &apdu.Command{INS: 0xB0, Ne: 65536},
			[]string{"00b00000 000000", "0102 9000"}, "0102", 0x9000, nil},
		{"chained piece refused", apdu.ClientOptions{MaxChunk: 2}, &apdu.Command{INS: 0x20, Data: []byte{1, 2, 3}},
			[]string{"10200000 02 0102", "6884"}, "", 0x6884, nil},
		{"chained", apdu.ClientOptions{MaxChunk: 2}, &apdu.Command{INS: 0x20, Data: []byte{1, 2, 3, 4, 5}, Ne: 1},
			[]string{"10200000 02 0102", "9000", "10200000 02 0304", "9000", "00200000 01 05 01", "aa 9000"}, "aa", 0x9000, nil},
		{"data for a chained piece", apdu.ClientOptions{MaxChunk: 2}, &apdu.Command{INS: 0x20, Data: []byte{1, 2, 3}},
			[]string{"10200000 02 0102", "01 9000"}, "", 0, device.ErrProtocol},
		{"one-byte answer", apdu.ClientOptions{}, read, []string{"00b0000000", "90"}, "", 0, device.ErrProtocol},
		{"Ne out of range", apdu.ClientOptions{}, &apdu.Command{Ne: -1}, nil, "", 0, device.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := apdu.NewClient(playback(t, tt.steps...), tt.opts)
			resp, err := c.Transceive(context.Background(), tt.cmd)
			if tt.err != nil {
				if resp != nil || !errors.Is(err, tt.err) {
					t.Fatalf("Transceive = %v, %v; want %v", resp, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(resp.Data, unhex(t, tt.data)) || resp.SW != tt.sw {
				t.Errorf("Transceive = %x %04X, want %s %04X", resp.Data, resp.SW, tt.data, tt.sw)
			}
		})
	}
}

func TestClientEndlessGetResponse(t *testing.T) {
	n := 0
	c := apdu.NewClient(transmitFunc(func(b []byte) ([]byte, error) {
		n++
		return append(make([]byte, 256), 0x61, 0x00), nil
	}), apdu.ClientOptions{})
	_, err := c.Transceive(context.Background(), &apdu.Command{INS: 0xB0, Ne: 256})
	if !errors.Is(err, device.ErrProtocol) || n > 4200 {
		t.Fatalf("after %d transmits: %v", n, err)
	}
}

func TestClientTransmitError(t *testing.T) {
	c := apdu.NewClient(transmitFunc(func([]byte) ([]byte, error) {
		return nil, fmt.Errorf("reader says: %w", device.ErrRemoved)
	}), apdu.ClientOptions{})
	if _, err := c.CBOR(context.Background(), []byte{4}); !errors.Is(err, device.ErrRemoved) {
		t.Fatalf("CBOR = %v, want ErrRemoved", err)
	}
	if _, err := c.APDU(context.Background(), []byte{0, 3, 0, 0}); !errors.Is(err, device.ErrRemoved) {
		t.Fatalf("APDU = %v, want ErrRemoved", err)
	}
	if _, err := c.APDU(context.Background(), []byte{0, 3, 0}); !errors.Is(err, device.ErrProtocol) {
		t.Fatalf("APDU of 3 bytes = %v, want ErrProtocol", err)
	}
}

func TestClientCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := apdu.NewClient(playback(t), apdu.ClientOptions{})
	if _, err := c.Select(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Select = %v", err)
	}
	if _, err := c.CBOR(ctx, []byte{4}); !errors.Is(err, context.Canceled) {
		t.Errorf("CBOR = %v", err)
	}
	if _, err := c.Transceive(ctx, &apdu.Command{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Transceive = %v", err)
	}
}

func TestClientCBOR(t *testing.T) {
	const msg = "80108000 01 04 00"
	const poll = "8011000000"
	tests := []struct {
		name   string
		steps  []string
		want   string
		status []ctap2.KeepaliveStatus
		err    error
	}{
		{"direct", []string{msg, "00a0 9000"}, "00a0", nil, nil},
		{"status updates", []string{msg, "02 9100", poll, "9100", poll, "01 9100", poll, "00a0 9000"}, "00a0",
			[]ctap2.KeepaliveStatus{ctap2.StatusUPNeeded, ctap2.StatusProcessing, ctap2.StatusProcessing}, nil},
		{"answer in pieces", []string{msg, "02 9100", poll, "0001 6103", "00c0000003", "6c02", "00c0000002", "0203 6101", "00c0000001", "04 9000"},
			"0001020304", []ctap2.KeepaliveStatus{ctap2.StatusUPNeeded}, nil},
		{"long status update", []string{msg, "0202 9100"}, "", nil, device.ErrProtocol},
		{"empty answer", []string{msg, "9000"}, "", nil, device.ErrProtocol},
		{"U2F-only card", []string{msg, "6d00"}, "", nil, device.ErrNotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := apdu.NewClient(playback(t, tt.steps...), apdu.ClientOptions{PollInterval: -1})
			var seen []ctap2.KeepaliveStatus
			ctx := ctap2.WithKeepalive(context.Background(), func(s ctap2.KeepaliveStatus) { seen = append(seen, s) })
			got, err := c.CBOR(ctx, []byte{4})
			if tt.err != nil {
				if got != nil || !errors.Is(err, tt.err) {
					t.Fatalf("CBOR = %x, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, unhex(t, tt.want)) {
				t.Fatalf("CBOR = %x, %v; want %s", got, err, tt.want)
			}
			if fmt.Sprint(seen) != fmt.Sprint(tt.status) {
				t.Errorf("keepalives %v, want %v", seen, tt.status)
			}
		})
	}
	c := apdu.NewClient(playback(t), apdu.ClientOptions{})
	if _, err := c.CBOR(context.Background(), nil); !errors.Is(err, device.ErrProtocol) {
		t.Errorf("empty request: %v", err)
	}
}

// Concurrent callers share one Client; each exchange stays whole.
func TestClientConcurrent(t *testing.T) {
	noLeak(t)
	card := newCard(t, &testHandler{}, apdu.CardOptions{})
	c := apdu.NewClient(card, apdu.ClientOptions{})
	if _, err := c.Select(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			req := append([]byte{0x41, byte(i)}, bigPayload(600+i)...)
			for range 5 {
				got, err := c.CBOR(context.Background(), req)
				if err != nil || !bytes.Equal(got, append([]byte{0}, req...)) {
					t.Errorf("caller %d: %d bytes, %v", i, len(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
}
