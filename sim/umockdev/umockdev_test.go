package umockdev

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/authbench/authbench/device"
)

func TestEnviron(t *testing.T) {
	tb := &Testbed{dir: "/tmp/umockdev.X"}
	tests := []struct {
		in, want []string
	}{
		{nil, []string{"LD_PRELOAD=" + Preload, "UMOCKDEV_DIR=/tmp/umockdev.X"}},
		{[]string{"HOME=/root", "UMOCKDEV_DIR=/tmp/other", "PATH=/bin"},
			[]string{"HOME=/root", "PATH=/bin", "LD_PRELOAD=" + Preload, "UMOCKDEV_DIR=/tmp/umockdev.X"}},
		{[]string{"LD_PRELOAD=libasan.so"}, []string{"LD_PRELOAD=" + Preload + ":libasan.so", "UMOCKDEV_DIR=/tmp/umockdev.X"}},
		{[]string{"LD_PRELOAD=" + Preload}, []string{"LD_PRELOAD=" + Preload, "UMOCKDEV_DIR=/tmp/umockdev.X"}},
	}
	for _, tt := range tests {
		if got := tb.Environ(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Environ(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHelperEnv: the testbed's own Python never runs inside a testbed.
func TestHelperEnv(t *testing.T) {
	in := []string{"A=1", "UMOCKDEV_DIR=/tmp/umockdev.X", "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libumockdev-preload.so.0:libasan.so", "B=2"}
	want := []string{"A=1", "LD_PRELOAD=libasan.so", "B=2"}
	if got := helperEnv(in); !slices.Equal(got, want) {
		t.Errorf("helperEnv = %q, want %q", got, want)
	}
	if got := helperEnv([]string{"LD_PRELOAD=" + Preload}); len(got) != 0 {
		t.Errorf("helperEnv kept %q", got)
	}
}

type nopChip struct{}

func (nopChip) ServeCTAP2(context.Context, []byte) []byte { return []byte{0x01} }
func (nopChip) ServeU2F(context.Context, []byte) []byte   { return []byte{0x6D, 0x00} }

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Start(ctx, nil, Options{}); err == nil {
		t.Error("Start without keys succeeded")
	}
	if _, err := Start(ctx, []Key{{}}, Options{}); err == nil {
		t.Error("Start with a key without a chip succeeded")
	}
	_, err := Start(ctx, []Key{{Chip: nopChip{}}}, Options{Python: "/nonexistent/python3"})
	if !errors.Is(err, ErrMissing) || !errors.Is(err, device.ErrNotSupported) {
		t.Errorf("Start without Python = %v, want ErrMissing", err)
	}
	// An interpreter without python3-gi: the error names the packages.
	fake := filepath.Join(t.TempDir(), "python3")
	script := "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'gi'\" >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Start(ctx, []Key{{Chip: nopChip{}}}, Options{Python: fake})
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "gir1.2-umockdev-1.0") {
		t.Errorf("Start without python3-gi = %v, want ErrMissing naming the packages", err)
	}
	_, err = Start(ctx, []Key{{Chip: nopChip{}}}, Options{Python: "/bin/false"})
	if err == nil || errors.Is(err, ErrMissing) {
		t.Errorf("Start with an interpreter that fails = %v", err)
	}
}
