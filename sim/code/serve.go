package code

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/sim/code/voice"
)

var _ frame.Handler = (*Device)(nil)

// HandleFrame answers one CDP/1 request (docs/cdp1.md): cmd without the
// response bit and its payload. It returns the status and the bytes after
// it, never more than frame.MaxData, and never panics, whatever the bytes.
// It implements frame.Handler, so frame.Serve puts the device on any byte
// stream; the repeated-SEQ cache is frame.Server's. The package
// documentation lists the answers; ctx is not used (the device never
// waits).
func (d *Device) HandleFrame(ctx context.Context, cmd byte, payload []byte) (frame.Status, []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handle(cmd, payload)
}

// handle is HandleFrame with d.mu held.
func (d *Device) handle(cmd byte, req []byte) (frame.Status, []byte) {
	switch cmd {
	case frame.CmdIdentify:
		if len(req) != 0 {
			return frame.StatusBadRequest, nil
		}
		return frame.StatusOK, append([]byte(nil), d.identity...)
	case frame.CmdPress:
		if len(req) != 0 {
			return frame.StatusBadRequest, nil
		}
		return d.press()
	case frame.CmdDisplay:
		if d.kind != device.KindCodeDisplay {
			return frame.StatusUnknownCommand, nil
		}
		if len(req) != 0 {
			return frame.StatusBadRequest, nil
		}
		if now := d.clock(); d.shown == "" || now.Unix() < 0 || d.totp.Step(now) != d.shownAt {
			d.shown = ""
			return frame.StatusOK, nil
		}
		return frame.StatusOK, []byte(d.shown)
	case frame.CmdAudio:
		if d.kind != device.KindAudioCodeReader {
			return frame.StatusUnknownCommand, nil
		}
		return d.audio(req)
	case frame.CmdSettings:
		if d.kind != device.KindAudioCodeReader {
			return frame.StatusUnknownCommand, nil
		}
		return d.setSettings(req)
	case frame.CmdStatus:
		if len(req) != 0 {
			return frame.StatusBadRequest, nil
		}
		return d.status()
	case frame.CmdProvision, frame.CmdSetClock, frame.CmdSeal:
		if st := d.factoryOnly(); st != frame.StatusOK {
			return st, nil
		}
		switch cmd {
		case frame.CmdProvision:
			return d.provision(req)
		case frame.CmdSetClock:
			return d.setClock(req)
		default:
			if len(req) != 0 {
				return frame.StatusBadRequest, nil
			}
			d.factory, d.sealed = false, true
			return frame.StatusOK, nil
		}
	}
	return frame.StatusUnknownCommand, nil
}

func (d *Device) factoryOnly() frame.Status {
	switch {
	case d.factory:
		return frame.StatusOK
	case d.sealed:
		return frame.StatusSealed
	}
	return frame.StatusNotFactory
}

func (d *Device) press() (frame.Status, []byte) {
	if d.faults.Busy {
		return frame.StatusBusy, nil
	}
	if d.battery < LowBattery {
		return frame.StatusBatteryLow, nil
	}
	now := d.clock()
	code, step, err := d.totp.At(now)
	if err != nil { // the device clock is before 1970: nothing sensible to show
		return frame.StatusBusy, nil
	}
	if d.faults.WrongCode {
		if code, err = d.totp.Code(step + 1); err != nil {
			return frame.StatusBusy, nil
		}
	}
	var pcm []byte
	if d.kind == device.KindAudioCodeReader {
		if pcm, err = d.voice.Say(code, d.settings); err != nil {
			return frame.StatusBusy, nil
		}
	}
	left := d.totp.Expires(step).Sub(now)
	secs := (left + time.Second - 1) / time.Second // rounded up
	r := frame.PressResponse{Step: step, SecondsLeft: uint16(min(secs, math.MaxUint16)), Digits: code}
	if d.kind == device.KindAudioCodeReader {
		r.Audio = &frame.AudioFormat{SampleRate: voice.SampleRate, Length: uint32(len(pcm))}
	}
	b, err := r.Encode()
	if err != nil {
		return frame.StatusBusy, nil
	}
	if d.kind == device.KindAudioCodeReader {
		if d.faults.CorruptAudio {
			pcm = corrupt(pcm)
		}
		d.pcm = pcm
	} else {
		d.shown, d.shownAt = code, step
	}
	if d.presses < math.MaxUint32 {
		d.presses++
	}
	return frame.StatusOK, b
}

// corrupt replaces the middle third of pcm with deterministic noise (a
// 32-bit xorshift sequence).
func corrupt(pcm []byte) []byte {
	out := append([]byte(nil), pcm...)
	x := uint32(0x9E3779B9)
	for i := len(out) / 3; i < 2*len(out)/3; i++ {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = byte(x)
	}
	return out
}

func (d *Device) audio(req []byte) (frame.Status, []byte) {
	r, err := frame.ParseAudioRequest(req)
	if err != nil {
		return frame.StatusBadRequest, nil
	}
	if d.pcm == nil {
		return frame.StatusNoCode, nil
	}
	if uint64(r.Offset) >= uint64(len(d.pcm)) {
		return frame.StatusOK, nil
	}
	rest := d.pcm[r.Offset:]
	n := min(int(r.Max), len(rest), frame.MaxData)
	return frame.StatusOK, append([]byte(nil), rest[:n]...)
}

func (d *Device) setSettings(req []byte) (frame.Status, []byte) {
	r, err := frame.ParseSettings(req)
	if err != nil {
		return frame.StatusBadRequest, nil
	}
	s := d.settings
	s.Language, s.Speed, s.Volume = r.Language, int(r.Speed), int(r.Volume)
	if s.Validate() != nil || !d.voice.Speaks(s.Language) {
		return frame.StatusBadRequest, nil
	}
	d.settings = s
	return frame.StatusOK, nil
}

func (d *Device) status() (frame.Status, []byte) {
	st := frame.DeviceStatus{
		Battery:     uint8(d.battery),
		Clock:       uint64(max(d.clock().Unix(), 0)),
		Presses:     d.presses,
		FactoryMode: d.factory,
	}
	b, err := st.Encode()
	if err != nil {
		return frame.StatusBusy, nil
	}
	return frame.StatusOK, b
}

func (d *Device) provision(req []byte) (frame.Status, []byte) {
	r, err := frame.ParseProvisionRequest(req)
	if err != nil {
		return frame.StatusBadRequest, nil
	}
	// The nonce is SHA-256(nonce key | counter): it never repeats for this
	// device key while the counter runs, and it is deterministic.
	var nonce [12]byte
	h := sha256.New()
	h.Write(d.nonceKey)
	h.Write(binary.BigEndian.AppendUint64(nil, d.nonces))
	copy(nonce[:], h.Sum(nil))
	resp, err := frame.SealSecret(d.priv, r, d.serial, nonce, d.totp.Secret)
	if err != nil { // a station key that is a low-order point
		return frame.StatusBadRequest, nil
	}
	b, err := resp.Encode()
	if err != nil {
		return frame.StatusBusy, nil
	}
	d.nonces++
	return frame.StatusOK, b
}

func (d *Device) setClock(req []byte) (frame.Status, []byte) {
	r, err := frame.ParseSetClock(req)
	if err != nil || r.Unix > maxClock {
		return frame.StatusBadRequest, nil
	}
	d.ref = d.now()
	d.base = time.Unix(int64(r.Unix), 0)
	return frame.StatusOK, nil
}
