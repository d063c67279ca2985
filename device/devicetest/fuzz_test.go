package devicetest_test

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/device/frame"
)

// The suites judge bytes from a device: whatever a device answers, a check
// must fail or skip with a message, never panic or outlive its deadline.
// These targets answer every request with the fuzzer's bytes.

// readHex returns the bytes of every testdata file matching pattern: hex
// digits, whitespace ignored, '#' starting a comment.
func readHex(f *testing.F, pattern string) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("../../testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", pattern, err)
	}
	var out [][]byte
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var digits strings.Builder
		for _, line := range strings.Split(string(raw), "\n") {
			line, _, _ = strings.Cut(line, "#")
			digits.WriteString(strings.Join(strings.Fields(line), ""))
		}
		b, err := hex.DecodeString(digits.String())
		if err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		out = append(out, b)
	}
	return out
}

// parrot answers every CTAP2 message with the same bytes.
type parrot []byte

func (p parrot) CBOR(ctx context.Context, req []byte) ([]byte, error) {
	return append([]byte(nil), p...), ctx.Err()
}

func noPanic(t *testing.T, rep *devicetest.Report) {
	t.Helper()
	for _, r := range rep.Results {
		if strings.Contains(r.Message, "panicked") || strings.Contains(r.Message, "ignores cancellation") {
			t.Fatalf("%s: %s\n%s", r.Name, r.Message, strings.Join(r.Log, "\n"))
		}
	}
}

func FuzzChipSuite(f *testing.F) {
	for _, body := range readHex(f, "ctap2/*-response*.hex") {
		f.Add(append([]byte{0x00}, body...))
	}
	f.Add([]byte{})
	f.Add([]byte{0x2E})
	f.Add([]byte{0x00})
	f.Fuzz(func(t *testing.T, answer []byte) {
		rep := devicetest.RunSuite(t.Context(), devicetest.ChipSuite(devicetest.ChipOptions{}),
			devicetest.NewMessengerChip(parrot(answer)), devicetest.RunOptions{Timeout: 2 * time.Second})
		noPanic(t, rep)
	})
}

func FuzzCodeSuite(f *testing.F) {
	for _, wire := range readHex(f, "frame/*_response*.hex") {
		if fr, err := frame.ParseFrame(wire); err == nil {
			f.Add(fr.Payload)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0x00})
	f.Fuzz(func(t *testing.T, answer []byte) {
		st, data := frame.StatusOK, []byte(nil)
		if len(answer) > 0 {
			st, data = frame.Status(answer[0]), answer[1:min(len(answer), frame.MaxData+1)]
		}
		h := frame.HandlerFunc(func(context.Context, byte, []byte) (frame.Status, []byte) { return st, data })
		opts := devicetest.CodeOptions{Secret: []byte("12345678901234567890"), Wait: 200 * time.Millisecond, Destructive: true}
		rep := devicetest.RunSuite(t.Context(), devicetest.CodeDeviceSuite(opts), serveHandler(t, h), devicetest.RunOptions{Timeout: 2 * time.Second})
		noPanic(t, rep)
	})
}
