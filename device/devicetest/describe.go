package devicetest

import (
	"context"
	"fmt"

	"github.com/authbench/authbench/device"
)

// The chip and code device suites' Describe and Probe: what a report's
// header says about the device, and the cheap question that tells whether
// a device that did not answer in time still answers at all.

// describeChip fills in a chip's getInfo: versions, AAGUID (none for a
// U2F-only chip) and firmware version (CTAP 2.1 §6.4, member 0x0E).
func describeChip(ctx context.Context, r *Run, d *DeviceSummary) error {
	cut, err := underTest(ctx, r)
	if err != nil {
		return err
	}
	if d.Kind == "" {
		d.Kind = device.KindChip
	}
	info, err := cut.chip.Info(ctx)
	if err != nil {
		return err
	}
	d.Versions = info.Versions
	if d.AAGUID == "" {
		d.AAGUID = FormatAAGUID(info.AAGUID)
	}
	if d.Firmware == "" && info.FirmwareVersion != 0 {
		d.Firmware = fmt.Sprintf("%d (0x%06X)", info.FirmwareVersion, info.FirmwareVersion)
	}
	return nil
}

// FormatAAGUID writes an AAGUID in the 8-4-4-4-12 form of a UUID; it
// returns "" for the all-zero AAGUID of a U2F-only chip (CTAP 2.1 §10), and
// the hex of anything that is not 16 bytes.
func FormatAAGUID(a []byte) string {
	if len(a) != 16 {
		return fmt.Sprintf("%x", a)
	}
	zero := true
	for _, b := range a {
		zero = zero && b == 0
	}
	if zero {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", a[0:4], a[4:6], a[6:8], a[8:10], a[10:16])
}

// probeChip asks a chip something cheap: U2F_VERSION for a U2F-only chip,
// whose getInfo drivers answer themselves, else getInfo.
func probeChip(ctx context.Context, target any) error {
	if p, ok := target.(device.ProtocolReporter); ok && p.Protocols() == device.ProfileU2FOnly {
		if cl := u2fClientOf(target); cl != nil {
			_, err := cl.Version(ctx)
			return err
		}
	}
	ch, err := targetAs[device.Chip](target, "device.Chip")
	if err != nil {
		return err
	}
	_, err = ch.Info(ctx)
	return err
}

// describeCodeDevice fills in what IDENTIFY says (CDP/1 §4.1).
func describeCodeDevice(ctx context.Context, r *Run, d *DeviceSummary) error {
	dev, err := targetAs[device.CodeDevice](r.Target, "device.CodeDevice")
	if err != nil {
		return err
	}
	c := &codeRun{Run: r, dev: dev}
	id, err := c.identity(ctx)
	if err != nil {
		return err
	}
	d.Kind = id.Kind
	if id.Serial != "" {
		d.Serial = id.Serial
	}
	if id.Model != "" {
		d.Model = id.Model
	}
	if id.Firmware != "" {
		d.Firmware = id.Firmware
	}
	d.Versions = []string{fmt.Sprintf("CDP/%d", id.ProtocolVersion)}
	return nil
}

// probeCodeDevice asks a code device for IDENTIFY.
func probeCodeDevice(ctx context.Context, target any) error {
	dev, err := targetAs[device.CodeDevice](target, "device.CodeDevice")
	if err != nil {
		return err
	}
	_, err = dev.Identify(ctx)
	return err
}
