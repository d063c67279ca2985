package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/ctaphid/ctaphidtest"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/device/frame/frametest"
	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/code"
	"github.com/authbench/authbench/sim/vicc"
)

// The faults of `authbench sim --fault`: every defect the simulators' Go
// options offer (sim/chip Faults, sim/code Faults and its battery and
// clock, sim/vicc faults and apdu.Card storms for a card behind pcscd,
// ctaphidtest.Faulty for CTAPHID reports on UDP, frametest.Faults for
// CDP/1 frames on a pty), named for a bench operator. A fault is written
// NAME, NAME=VALUE, NAME@WHEN or NAME@WHEN=VALUE; WHEN is a number (the
// N-th APDU, report or request the device receives, or the N-th answer it
// sends, counted from 1 since the simulator started; several with commas)
// or, where noted, a command name (the first such command).

// Where a fault applies.
const (
	faultChips = "chips"
	faultPCSC  = "chips on pcsc"
	faultUDP   = "chips on udp"
	faultCode  = "code devices"
)

// faultDef is one fault the --fault flag knows.
type faultDef struct {
	name  string
	on    []string // where it applies
	when  string   // "": no @WHEN; "N": numbers; "N|CMD": numbers or a command name
	value string   // placeholder of =VALUE; "" for none; "[X]" when optional
	help  string
}

var faultDefs = []faultDef{
	// Chips, whatever the transport (sim/chip Faults).
	{"bad-signature", []string{faultChips}, "", "", "every signature (attestation, assertion, U2F) covers other bytes, so it does not verify"},
	{"counter-stuck", []string{faultChips}, "", "", "the signature counter stays at 1 (a cloned chip's signal)"},
	{"counter-offset", []string{faultChips}, "", "N", "N is added to every signature counter"},
	{"wrong-rp-id-hash", []string{faultChips}, "", "", "authenticator data carry the hash of another RP ID"},
	{"ignore-exclude-list", []string{faultChips}, "", "", "makeCredential ignores the excludeList"},
	// The card behind pcscd (sim/vicc, apdu.Card).
	{"removed", []string{faultPCSC, faultCode}, "N|CMD", "[DURATION]", "the card is pulled from the reader when APDU N (or CMD) arrives, and put back after DURATION (default: it stays out); a code device's cable is pulled (the pty closes) when request N (or CMD) arrives"},
	{"mute", []string{faultPCSC, faultUDP, faultCode}, "N|CMD", "", "the device stops answering from APDU, report or request N (or CMD) on"},
	{"slow-answer", []string{faultPCSC}, "N|CMD", "[DURATION]", "the card holds its answer to APDU N (or CMD) for DURATION (default 500ms)"},
	{"garbled-answer", []string{faultPCSC}, "N|CMD", "", "the answer to APDU N (or CMD) is replaced by as many random bytes"},
	{"truncated-answer", []string{faultPCSC}, "N|CMD", "", "the answer to APDU N (or CMD) is cut to one byte"},
	{"61xx-storm", []string{faultPCSC}, "", "[N]", "the card gives at most N bytes (default 1) per answer; the rest waits behind 61xx for GET RESPONSE"},
	{"9100-storm", []string{faultPCSC}, "", "[N]", "the card answers 9100 (still working) N times to every CTAP request before its answer (default: for ever)"},
	// CTAPHID reports on UDP (ctaphidtest.Faulty), and CDP/1 frames on a
	// pty (frametest.Faults): requests are what the device receives,
	// answers what it sends.
	{"drop-request", []string{faultUDP}, "N", "", "report N to the chip is lost"},
	{"drop-answer", []string{faultUDP, faultCode}, "N", "", "answer N (a report from the chip, a frame from a code device) is lost"},
	{"duplicate-request", []string{faultUDP}, "N", "", "report N to the chip arrives twice"},
	{"duplicate-answer", []string{faultUDP, faultCode}, "N", "", "answer N is sent twice"},
	{"reorder-request", []string{faultUDP}, "N", "", "report N to the chip arrives after the next one"},
	{"reorder-answer", []string{faultUDP, faultCode}, "N", "", "answer N is sent after the next one"},
	{"corrupt-request", []string{faultUDP}, "N", "[BYTE]", "byte BYTE (default 7) of report N to the chip is inverted"},
	{"corrupt-answer", []string{faultUDP, faultCode}, "N", "[BYTE]", "answer N is damaged: byte BYTE (default 7) of a report inverted; a frame's last bit flipped"},
	{"wrong-cid-request", []string{faultUDP}, "N", "", "report N to the chip comes on another channel"},
	{"wrong-cid-answer", []string{faultUDP}, "N", "", "report N from the chip goes to another channel"},
	{"delay-request", []string{faultUDP}, "N", "DURATION", "report N to the chip arrives DURATION late"},
	{"delay-answer", []string{faultUDP, faultCode}, "N", "DURATION", "answer N goes out DURATION late"},
	{"wrong-seq", []string{faultCode}, "N", "", "answer frame N carries the previous request's SEQ"},
	{"bad-crc", []string{faultCode}, "N", "", "answer frame N has a bad CRC"},
	// Code devices (sim/code Faults, battery, clock).
	{"wrong-code", []string{faultCode}, "", "", "PRESS shows the code of the next time step"},
	{"corrupt-audio", []string{faultCode}, "", "", "the middle third of what an audio reader says is noise"},
	{"busy", []string{faultCode}, "", "", "PRESS answers busy (status 04)"},
	{"low-battery", []string{faultCode}, "", "", "the battery is at 3 %: PRESS answers battery low (status 05)"},
	{"battery", []string{faultCode}, "", "PERCENT", "the battery is at PERCENT (1-100)"},
	{"clock-offset", []string{faultCode}, "", "DURATION", "the device clock is DURATION ahead (negative: behind)"},
	{"clock-drift", []string{faultCode}, "", "PPM", "the device clock runs PPM parts per million fast (negative: slow)"},
}

// faultHelp is the fault catalogue for `authbench help sim`.
func faultHelp() string {
	var b strings.Builder
	b.WriteString("Faults (--fault, repeatable), and the devices they apply to. WHEN is N (the N-th APDU, report or request the device receives, or answer it sends, counted from 1 since the simulator started; several with commas) or, where CMD is allowed, a command name: the first such command (makeCredential, getAssertion, getInfo, reset, selection, register, authenticate for chips; IDENTIFY, PRESS, STATUS, ... for code devices).\n\n")
	for _, d := range faultDefs {
		spec := d.name
		if d.when != "" {
			spec += "@" + d.when
		}
		switch {
		case strings.HasPrefix(d.value, "["):
			spec += "[=" + strings.Trim(d.value, "[]") + "]"
		case d.value != "":
			spec += "=" + d.value
		}
		fmt.Fprintf(&b, "    %s\n", spec)
		for _, l := range wrapWords(d.help+" ("+strings.Join(d.on, ", ")+")", 72) {
			fmt.Fprintf(&b, "        %s\n", l)
		}
	}
	b.WriteString("\nPresence (--presence): auto touches at once, deny refuses, never leaves the button alone (requests wait until the host gives up), manual waits for a key pressed where sim runs (a line on standard input when it is not a terminal) or for SIGUSR1.")
	return b.String()
}

// frameFaults are the numbers of the answer frames a code device spoils
// (see frametest.Faults).
type frameFaults struct {
	Drop, Corrupt, Duplicate, Reorder, WrongSeq, BadCRC, Delay []int
	DelayBy                                                    time.Duration
}

// wrapWords breaks s into lines of at most width runes where it can.
func wrapWords(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(w)) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// trigger says when a numbered fault fires: at the listed numbers, or at
// the first command of a name.
type trigger struct {
	ns  []int
	cmd string // as given; matched without regard to case
}

func (t trigger) String() string {
	if t.cmd != "" {
		return t.cmd
	}
	s := make([]string, len(t.ns))
	for i, n := range t.ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// at reports whether the fault fires for item n, which is command cmd
// ("" for none), and uses up a command trigger; fired is its state.
func (t trigger) at(n int, cmd string, fired *bool) bool {
	if t.cmd != "" {
		if !*fired && strings.EqualFold(cmd, t.cmd) {
			*fired = true
			return true
		}
		return false
	}
	return slices.Contains(t.ns, n)
}

// from reports whether item n (command cmd) is at or after the trigger;
// a command trigger latches in fired.
func (t trigger) from(n int, cmd string, fired *bool) bool {
	if t.cmd != "" {
		if strings.EqualFold(cmd, t.cmd) {
			*fired = true
		}
		return *fired
	}
	return n >= slices.Min(t.ns)
}

// timedFault is a numbered fault of a card or a device.
type timedFault struct {
	name  string
	when  trigger
	fired bool
}

// simFaults is what the --fault flags ask of the simulated devices.
type simFaults struct {
	specs []string // as given, for messages

	chip chip.Faults

	// A card behind pcscd.
	card     apdu.CardOptions // storms
	cardAt   []*timedFault    // removed, mute, slow-answer, garbled-answer, truncated-answer
	delay    time.Duration    // of slow-answer
	reinsert time.Duration    // of removed; 0: the card stays out

	// A chip on UDP.
	hid     []ctaphidtest.Fault
	hidMute *timedFault

	// Code devices.
	code      code.Faults
	battery   int
	drift     code.Drift
	frames    frameFaults
	codeMute  *timedFault
	codeUnplg *timedFault

	on map[string]bool // where the given faults apply
}

// parseFaults turns the --fault values into simFaults. Errors are usage
// errors naming the value.
func parseFaults(specs []string) (*simFaults, error) {
	f := &simFaults{specs: specs, on: map[string]bool{}}
	for _, s := range specs {
		if err := f.add(s); err != nil {
			return nil, usageError{fmt.Errorf("--fault %q: %v", s, err)}
		}
	}
	return f, nil
}

func (f *simFaults) add(spec string) error {
	head, value, hasValue := strings.Cut(spec, "=")
	name, when, hasWhen := strings.Cut(head, "@")
	i := slices.IndexFunc(faultDefs, func(d faultDef) bool { return d.name == name })
	if i < 0 {
		names := make([]string, len(faultDefs))
		for j, d := range faultDefs {
			names[j] = d.name
		}
		return fmt.Errorf("no such fault; faults: %s (see authbench help sim)", strings.Join(names, ", "))
	}
	d := faultDefs[i]
	var t trigger
	switch {
	case d.when == "" && hasWhen:
		return fmt.Errorf("%s takes no @WHEN", name)
	case d.when != "" && !hasWhen:
		return fmt.Errorf("%s needs @WHEN: %s@%s", name, name, d.when)
	case d.when != "":
		var err error
		if t, err = parseTrigger(when, strings.Contains(d.when, "CMD")); err != nil {
			return err
		}
	}
	optional := strings.HasPrefix(d.value, "[")
	switch {
	case d.value == "" && hasValue:
		return fmt.Errorf("%s takes no =VALUE", name)
	case d.value != "" && !optional && !hasValue:
		return fmt.Errorf("%s needs a value: %s=%s", name, head, d.value)
	}
	for _, on := range d.on {
		f.on[on] = true
	}
	dur := func(def time.Duration) (time.Duration, error) {
		if !hasValue {
			return def, nil
		}
		v, err := time.ParseDuration(value)
		if err != nil {
			return 0, fmt.Errorf("not a duration (such as 300ms or 2s): %q", value)
		}
		return v, nil
	}
	num := func(def, min, max int) (int, error) {
		if !hasValue {
			return def, nil
		}
		v, err := strconv.Atoi(value)
		if err != nil || v < min || v > max {
			return 0, fmt.Errorf("want a whole number from %d to %d, not %q", min, max, value)
		}
		return v, nil
	}
	var err error
	hidFault := func(dir ctaphidtest.Direction, kind ctaphidtest.FaultKind) error {
		ft := ctaphidtest.Fault{Dir: dir, Kind: kind}
		switch kind {
		case ctaphidtest.Corrupt:
			if ft.Byte, err = num(7, 0, 63); err != nil {
				return err
			}
		case ctaphidtest.Delay:
			if ft.Delay, err = dur(0); err != nil {
				return err
			}
		}
		for _, n := range t.ns {
			ft.N = n
			f.hid = append(f.hid, ft)
		}
		return nil
	}
	switch name {
	case "bad-signature":
		f.chip.BadSignature = true
	case "counter-stuck":
		f.chip.CounterStuck = true
	case "counter-offset":
		v, err := strconv.ParseUint(value, 10, 32)
		if err != nil {
			return fmt.Errorf("want a whole number from 0 to %d, not %q", uint32(1<<32-1), value)
		}
		f.chip.CounterOffset = uint32(v)
	case "wrong-rp-id-hash":
		f.chip.WrongRPIDHash = true
	case "ignore-exclude-list":
		f.chip.IgnoreExcludeList = true
	case "removed":
		if f.reinsert, err = dur(0); err != nil {
			return err
		}
		f.cardAt = append(f.cardAt, &timedFault{name: name, when: t})
		f.codeUnplg = &timedFault{name: name, when: t}
	case "mute":
		f.cardAt = append(f.cardAt, &timedFault{name: name, when: t})
		f.hidMute = &timedFault{name: name, when: t}
		f.codeMute = &timedFault{name: name, when: t}
	case "slow-answer":
		if f.delay, err = dur(vicc.DefaultDelay); err != nil {
			return err
		}
		f.cardAt = append(f.cardAt, &timedFault{name: name, when: t})
	case "garbled-answer", "truncated-answer":
		f.cardAt = append(f.cardAt, &timedFault{name: name, when: t})
	case "61xx-storm":
		if f.card.ChunkLimit, err = num(1, 1, 255); err != nil {
			return err
		}
	case "9100-storm":
		if f.card.UpdateStorm, err = num(-1, 1, 1<<20); err != nil {
			return err
		}
	case "drop-request":
		return hidFault(ctaphidtest.Reads, ctaphidtest.Drop)
	case "duplicate-request":
		return hidFault(ctaphidtest.Reads, ctaphidtest.Duplicate)
	case "reorder-request":
		return hidFault(ctaphidtest.Reads, ctaphidtest.Reorder)
	case "corrupt-request":
		return hidFault(ctaphidtest.Reads, ctaphidtest.Corrupt)
	case "wrong-cid-request":
		return hidFault(ctaphidtest.Reads, ctaphidtest.WrongCID)
	case "delay-request":
		return hidFault(ctaphidtest.Reads, ctaphidtest.Delay)
	case "wrong-cid-answer":
		return hidFault(ctaphidtest.Writes, ctaphidtest.WrongCID)
	case "drop-answer":
		f.frames.Drop = append(f.frames.Drop, t.ns...)
		return hidFault(ctaphidtest.Writes, ctaphidtest.Drop)
	case "duplicate-answer":
		f.frames.Duplicate = append(f.frames.Duplicate, t.ns...)
		return hidFault(ctaphidtest.Writes, ctaphidtest.Duplicate)
	case "reorder-answer":
		f.frames.Reorder = append(f.frames.Reorder, t.ns...)
		return hidFault(ctaphidtest.Writes, ctaphidtest.Reorder)
	case "corrupt-answer":
		f.frames.Corrupt = append(f.frames.Corrupt, t.ns...)
		return hidFault(ctaphidtest.Writes, ctaphidtest.Corrupt)
	case "delay-answer":
		if f.frames.DelayBy, err = dur(0); err != nil {
			return err
		}
		f.frames.Delay = append(f.frames.Delay, t.ns...)
		return hidFault(ctaphidtest.Writes, ctaphidtest.Delay)
	case "wrong-seq":
		f.frames.WrongSeq = append(f.frames.WrongSeq, t.ns...)
	case "bad-crc":
		f.frames.BadCRC = append(f.frames.BadCRC, t.ns...)
	case "wrong-code":
		f.code.WrongCode = true
	case "corrupt-audio":
		f.code.CorruptAudio = true
	case "busy":
		f.code.Busy = true
	case "low-battery":
		f.battery = code.LowBattery - 2
	case "battery":
		if f.battery, err = num(100, 1, 100); err != nil {
			return err
		}
	case "clock-offset":
		if f.drift.Offset, err = dur(0); err != nil {
			return err
		}
	case "clock-drift":
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || v < -1e5 || v > 1e5 {
			return fmt.Errorf("want parts per million from -100000 to 100000, not %q", value)
		}
		f.drift.PPM = v
	}
	return nil
}

// parseTrigger reads WHEN: numbers from 1, or a command name when cmd.
func parseTrigger(s string, cmd bool) (trigger, error) {
	var t trigger
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(part)
		if err == nil && n >= 1 {
			t.ns = append(t.ns, n)
			continue
		}
		if !cmd || strings.Contains(s, ",") || !knownCommand(part) {
			if cmd {
				return t, fmt.Errorf("@%s: want numbers from 1 (as in @3 or @2,5) or a command name (makeCredential, getAssertion, getInfo, reset, selection, register, authenticate; IDENTIFY, PRESS, DISPLAY, AUDIO, SETTINGS, STATUS, PROVISION, SET_CLOCK, SEAL)", s)
			}
			return t, fmt.Errorf("@%s: want numbers from 1, as in @3 or @2,5", s)
		}
		t.cmd = part
	}
	return t, nil
}

// chipCommands names the CTAP2 commands and U2F instructions a trigger can
// name.
var chipCommands = map[string]byte{
	"makeCredential": ctap2.CmdMakeCredential, "getAssertion": ctap2.CmdGetAssertion, "getInfo": ctap2.CmdGetInfo,
	"reset": ctap2.CmdReset, "getNextAssertion": ctap2.CmdGetNextAssertion, "selection": ctap2.CmdSelection,
}

var u2fCommands = map[string]byte{"register": 0x01, "authenticate": 0x02, "version": 0x03}

func knownCommand(s string) bool {
	for name := range chipCommands {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	for name := range u2fCommands {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	return frameCommand(s) != 0
}

// frameCommand returns the CDP/1 command of a name, or 0.
func frameCommand(s string) byte {
	for c := byte(1); c < 0x20; c++ {
		if strings.EqualFold(frame.CmdName(c), s) {
			return c
		}
	}
	return 0
}

// check refuses faults that apply to none of the devices sim was asked to
// run.
func (f *simFaults) check(cfg simConfig) error {
	have := map[string]bool{}
	for _, c := range cfg.chips {
		have[faultChips] = true
		t, _, _ := strings.Cut(c, "=")
		have["chips on "+t] = true
	}
	if len(cfg.codeDisplays)+len(cfg.audioReaders) > 0 {
		have[faultCode] = true
	}
	for _, s := range f.specs {
		head, _, _ := strings.Cut(s, "=")
		name, _, _ := strings.Cut(head, "@")
		d := faultDefs[slices.IndexFunc(faultDefs, func(d faultDef) bool { return d.name == name })]
		if !slices.ContainsFunc(d.on, func(on string) bool { return have[on] }) {
			return usageError{fmt.Errorf("--fault %s applies to %s, and none is simulated here", s, strings.Join(d.on, " or "))}
		}
	}
	return nil
}

// apduCommand names the command an APDU starts, tracking chained pieces in
// *chained: a CTAP2 command in NFCCTAP_MSG, a U2F instruction; "" for
// anything else.
func apduCommand(b []byte, chained *bool) string {
	cont := *chained
	if len(b) >= 1 {
		*chained = b[0]&0x10 != 0
	}
	cmd, err := apdu.ParseCommand(b)
	if cont || err != nil {
		return ""
	}
	switch {
	case cmd.CLA&^0x10 == 0x80 && cmd.INS == apdu.INSNFCCTAPMsg && len(cmd.Data) > 0:
		for name, c := range chipCommands {
			if c == cmd.Data[0] {
				return name
			}
		}
	case cmd.CLA == 0x00:
		for name, ins := range u2fCommands {
			if ins == cmd.INS {
				return name
			}
		}
	}
	return ""
}

// cardControl is the state of the faults of one card behind pcscd.
type cardControl struct {
	f          *simFaults
	serial     string
	powerCycle func() // the chip loses power when its card is pulled
	log        func(string)

	mu      sync.Mutex
	n       int
	chained bool
	fired   map[*timedFault]bool
	muted   bool
	pull    context.CancelFunc // ends the vpcd connection for good (removed)
}

// viccOptions returns the vicc options of the card of chip c with the
// faults, and the control that pulls the card.
func (f *simFaults) viccOptions(opts vicc.Options, c *chip.Chip, log func(string)) (vicc.Options, *cardControl) {
	cc := &cardControl{f: f, serial: c.Serial(), powerCycle: c.PowerCycle, log: log, fired: map[*timedFault]bool{}}
	if len(f.cardAt) == 0 {
		return opts, cc
	}
	if f.delay > 0 {
		opts.Delay = f.delay
	}
	opts.Fault = cc.fault
	return opts, cc
}

func (cc *cardControl) fault(_ int, b []byte) vicc.Fault {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.n++
	cmd := apduCommand(b, &cc.chained)
	if cc.muted {
		return vicc.FaultMute
	}
	for _, tf := range cc.f.cardAt {
		fired := cc.fired[tf]
		hit := tf.when.at(cc.n, cmd, &fired)
		cc.fired[tf] = fired
		if !hit {
			continue
		}
		what := fmt.Sprintf("APDU %d", cc.n)
		if cmd != "" {
			what += " (" + cmd + ")"
		}
		switch tf.name {
		case "removed":
			back := "it stays out until authbench sim is restarted"
			if cc.f.reinsert > 0 {
				back = fmt.Sprintf("it is put back in %v", cc.f.reinsert)
			}
			cc.log(fmt.Sprintf("chip %s: card pulled from the reader at %s (--fault %s@%s); %s", cc.serial, what, tf.name, tf.when, back))
			if cc.pull != nil {
				cc.pull()
			}
			return vicc.FaultRemove
		case "mute":
			cc.log(fmt.Sprintf("chip %s: the card stops answering at %s (--fault mute@%s)", cc.serial, what, tf.when))
			cc.muted = true
			return vicc.FaultMute
		case "slow-answer":
			return vicc.FaultDelay
		case "garbled-answer":
			return vicc.FaultGarbage
		case "truncated-answer":
			return vicc.FaultTruncate
		}
	}
	return vicc.FaultNone
}

// runCard serves a card on vpcd: the first connection, then reconnecting
// as pcscd comes and goes, until ctx ends. A card pulled by --fault removed
// stays out (no reconnection), or comes back after the fault's duration.
func (cc *cardControl) runCard(ctx context.Context, conn *vicc.Conn, first net.Conn, log *slog.Logger) error {
	for {
		cctx, pull := context.WithCancel(ctx)
		cc.mu.Lock()
		cc.pull, cc.muted = pull, false
		cc.mu.Unlock()
		var err error
		if first != nil {
			err = conn.RunOnce(cctx, first)
			first = nil
			if cctx.Err() == nil {
				log.Info("vpcd connection ended; reconnecting", "addr", conn.Addr(), "err", err)
				err = conn.Run(cctx)
			}
		} else {
			err = conn.Run(cctx)
		}
		pull()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if cctx.Err() == nil {
			return err
		}
		// Pulled.
		if cc.f.reinsert <= 0 {
			<-ctx.Done()
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cc.f.reinsert):
		}
		cc.powerCycle() // a card out of the reader has no power: the reset window opens again
		cc.log(fmt.Sprintf("chip %s: card put back in the reader", cc.serial))
	}
}

// hidStream wraps the UDP transport of a chip with the CTAPHID faults.
func (f *simFaults) hidStream(rw io.ReadWriter, serial string, log func(string)) io.ReadWriter {
	if len(f.hid) > 0 {
		rw = ctaphidtest.NewFaulty(rw, f.hid...)
	}
	if f.hidMute != nil {
		rw = &hidMute{ReadWriter: rw, t: f.hidMute.when, serial: serial, log: log}
	}
	return rw
}

// hidMute drops every report the chip receives from its trigger on: a chip
// that stopped answering.
type hidMute struct {
	io.ReadWriter
	t      trigger
	serial string
	log    func(string)

	n     int
	fired bool
	muted bool
}

func (m *hidMute) Read(p []byte) (int, error) {
	for {
		n, err := m.ReadWriter.Read(p)
		if err != nil {
			return n, err
		}
		m.n++
		if !m.muted && m.t.from(m.n, hidCommand(p[:n]), &m.fired) {
			m.muted = true
			m.log(fmt.Sprintf("chip %s: stops answering at report %d (--fault mute@%s)", m.serial, m.n, m.t))
		}
		if !m.muted {
			return n, nil
		}
	}
}

// SetReadDeadline passes the deadline on, so that ctaphid.Serve stops
// promptly.
func (m *hidMute) SetReadDeadline(t time.Time) error {
	if d, ok := m.ReadWriter.(interface{ SetReadDeadline(time.Time) error }); ok {
		return d.SetReadDeadline(t)
	}
	return errors.ErrUnsupported
}

// hidCommand names the command a CTAPHID initialization packet starts: a
// CTAP2 command in CTAPHID_CBOR, a U2F instruction in CTAPHID_MSG.
func hidCommand(r []byte) string {
	if len(r) < 9 || r[4]&0x80 == 0 {
		return ""
	}
	switch ctaphid.Command(r[4] &^ 0x80) {
	case ctaphid.CmdCBOR:
		for name, c := range chipCommands {
			if c == r[7] {
				return name
			}
		}
	case ctaphid.CmdMsg:
		for name, ins := range u2fCommands {
			if ins == r[8] {
				return name
			}
		}
	}
	return ""
}

// ptyOptions returns how a code device on a pty is served with the faults.
func (f *simFaults) ptyOptions(d *code.Device, log func(string)) (code.PTYOptions, *atomic.Pointer[code.PTY]) {
	var o code.PTYOptions
	var self atomic.Pointer[code.PTY]
	fr := &f.frames
	if len(fr.Drop)+len(fr.Corrupt)+len(fr.Duplicate)+len(fr.Reorder)+len(fr.WrongSeq)+len(fr.BadCRC)+len(fr.Delay) > 0 {
		o.Wrap = func(rw io.ReadWriter) io.ReadWriter {
			spoiled := &frametest.Faults{RW: rw, Drop: fr.Drop, Corrupt: fr.Corrupt, Duplicate: fr.Duplicate,
				Reorder: fr.Reorder, WrongSeq: fr.WrongSeq, BadCRC: fr.BadCRC, Delay: fr.Delay, DelayBy: fr.DelayBy}
			return struct {
				io.Reader
				io.Writer
			}{rw, spoiled}
		}
	}
	if f.codeMute != nil || f.codeUnplg != nil {
		h := &codeFaults{Device: d, serial: d.Serial(), log: log, self: &self}
		if f.codeMute != nil {
			h.mute = *f.codeMute
		}
		if f.codeUnplg != nil {
			h.unplug = *f.codeUnplg
		}
		o.Handler = h
	}
	return o, &self
}

// codeFaults answers CDP/1 requests with a code device, until its mute
// trigger (then it never answers again) or its unplug trigger (then the pty
// closes, as a pulled cable).
type codeFaults struct {
	*code.Device
	serial string
	log    func(string)
	self   *atomic.Pointer[code.PTY]
	mute   timedFault
	unplug timedFault

	mu    sync.Mutex
	n     int
	muted bool
}

func (c *codeFaults) HandleFrame(ctx context.Context, cmd byte, payload []byte) (frame.Status, []byte) {
	c.mu.Lock()
	c.n++
	name := frame.CmdName(cmd)
	mute := c.muted || (c.mute.name != "" && c.mute.when.from(c.n, name, &c.mute.fired))
	unplug := !mute && c.unplug.name != "" && c.unplug.when.at(c.n, name, &c.unplug.fired)
	if mute && !c.muted {
		c.muted = true
		c.log(fmt.Sprintf("%s: stops answering at request %d, %s (--fault mute@%s)", c.serial, c.n, name, c.mute.when))
	}
	n := c.n
	c.mu.Unlock()
	switch {
	case mute:
		<-ctx.Done()
		return frame.StatusBusy, nil
	case unplug:
		c.log(fmt.Sprintf("%s: cable pulled at request %d, %s (--fault removed@%s): the pty is gone", c.serial, n, name, c.unplug.when))
		if p := c.self.Load(); p != nil {
			go p.Close()
		}
		<-ctx.Done()
		return frame.StatusBusy, nil
	}
	return c.Device.HandleFrame(ctx, cmd, payload)
}

// Help is the detail of `authbench help sim`: the faults and presence
// policies.
func (*simCmd) Help() string { return faultHelp() }
