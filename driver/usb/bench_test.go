package usb_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/driver/usb"
	"github.com/authbench/authbench/sim/chip"
)

// benchGetAssertion measures one getAssertion (one credential in the allow
// list, presence Auto) through a usb.Chip made by NewChip, over tr, to a
// simulated chip served by ctaphid.Serve.
func benchGetAssertion(b *testing.B, tr transport) {
	s := startSim(b, tr, chip.Options{}, usb.Options{})
	ctx := context.Background()
	att, err := s.chip.MakeCredential(ctx, makeCredentialRequest())
	if err != nil {
		b.Fatal(err)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		b.Fatal(err)
	}
	cdh := sha256.Sum256([]byte("bench"))
	req := &ctap2.GetAssertionRequest{
		RPID:           rpID,
		ClientDataHash: cdh[:],
		AllowList:      []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: ad.AttestedCredential.CredentialID}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.chip.GetAssertion(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetAssertionUDPHID: CTAPHID reports in UDP datagrams on
// 127.0.0.1, the stand-in for USB on machines without it.
func BenchmarkGetAssertionUDPHID(b *testing.B) { benchGetAssertion(b, transports[1]) }

// BenchmarkGetAssertionPipe: CTAPHID reports over the in-memory pipe.
func BenchmarkGetAssertionPipe(b *testing.B) { benchGetAssertion(b, transports[0]) }

// BenchmarkGetAssertionEmulated: through gousb, libusb, umockdev's preload
// and the emulated bus's handler (a Python process) to the simulated chip
// on UDP. It measures the emulation, not USB: a full-speed key answers a
// report per 1 ms frame at best.
func BenchmarkGetAssertionEmulated(b *testing.B) { benchGetAssertion(b, transports[2]) }

// BenchmarkIdleEmulated measures what an open but idle key on the emulated
// bus costs: the Chip's IN transfer waits in libusb, which polls the key's
// node. It reports the CPU the testbed's handler and this process (the
// libusb client) use per second of idling; each op is 100 ms of idling.
func BenchmarkIdleEmulated(b *testing.B) {
	s := startSim(b, transports[2], chip.Options{}, usb.Options{})
	if _, err := s.chip.Info(context.Background()); err != nil {
		b.Fatal(err)
	}
	pid := s.bus.PID()
	h0, c0, t0 := processCPU(b, pid), selfCPU(), time.Now()
	for b.Loop() {
		time.Sleep(100 * time.Millisecond)
	}
	wall := time.Since(t0).Seconds()
	b.ReportMetric(100*(processCPU(b, pid)-h0).Seconds()/wall, "testbed-cpu-%")
	b.ReportMetric(100*(selfCPU()-c0).Seconds()/wall, "client-cpu-%")
}

// processCPU returns the user and system CPU time of process pid so far.
func processCPU(tb testing.TB, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name (which may hold spaces): utime and
	// stime are the 12th and 13th, in clock ticks (100 per second).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// selfCPU returns this process's user and system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
