package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/device/frame"
)

// infoCmd is `authbench info`.
type infoCmd struct {
	Device  string        `required:"" placeholder:"SELECTOR" help:"The device: pcsc:N or pcsc:READER, usb[:VID:PID[:N]], udp[:HOST:PORT], serial:PATH, sim:chip, sim:code-display or sim:audio-code-reader."`
	Timeout time.Duration `default:"10s" placeholder:"DURATION" help:"Limit for opening the device and asking it."`
	JSON    bool          `help:"Print what the device says as JSON."`
}

// deviceReport is what `authbench info` says of a device. Fields a device
// does not report stay empty.
type deviceReport struct {
	Device    string      `json:"device"` // the selector
	Kind      device.Kind `json:"kind"`
	Transport string      `json:"transport,omitempty"`
	Path      string      `json:"path,omitempty"`
	Model     string      `json:"model,omitempty"`
	Serial    string      `json:"serial,omitempty"`
	Firmware  string      `json:"firmware,omitempty"`
	Profile   string      `json:"profile,omitempty"` // chips: FIDO2, U2F-only, CTAP2-only

	// Chips on PC/SC: the card's answer to reset and the applet's answer
	// to SELECT.
	ATR    string `json:"atr,omitempty"`
	Applet string `json:"applet,omitempty"`
	// Chips on USB or UDP: what CTAPHID_INIT said.
	CTAPHID *hidReport `json:"ctaphid,omitempty"`
	// Chips: authenticatorGetInfo (CTAP 2.1 §6.4); for a U2F-only chip, what
	// the CTAP 2.1 §10 translation makes of it.
	Versions        []string        `json:"versions,omitempty"`
	AAGUID          string          `json:"aaguid,omitempty"`
	Options         map[string]bool `json:"options,omitempty"`
	Extensions      []string        `json:"extensions,omitempty"`
	Algorithms      []int64         `json:"algorithms,omitempty"`
	MaxMsgSize      uint64          `json:"max_msg_size,omitempty"`
	Transports      []string        `json:"transports,omitempty"`
	FirmwareVersion uint64          `json:"firmware_version,omitempty"`
	PINProtocols    []uint64        `json:"pin_uv_auth_protocols,omitempty"`

	// Code devices: IDENTIFY and STATUS (CDP/1 §4).
	Code   *device.CodeDeviceInfo `json:"code_device,omitempty"`
	Status *frame.DeviceStatus    `json:"status,omitempty"`
}

type hidReport struct {
	Protocol     int    `json:"protocol"`
	Version      string `json:"version"`
	Capabilities string `json:"capabilities"`
}

// Help is the detail of `authbench help info`.
func (*infoCmd) Help() string {
	return "For a chip: where it is, its ATR and SELECT answer (PC/SC) or CTAPHID_INIT answer (USB, UDP), its profile, " +
		"and its authenticatorGetInfo (versions, AAGUID, firmware, options, algorithms); for a code device: IDENTIFY " +
		"(serial, model, firmware, digits, period, algorithm) and STATUS (battery, clock, presses, factory mode). " +
		"Like ykman fido info, fido2-token -I and opensc-tool -a. Exit status 3 when the device cannot be opened."
}

func (c *infoCmd) Run(ctx context.Context, e *env) error {
	t, err := openDevice(ctx, c.Device, targetOptions{})
	if err != nil {
		return err
	}
	defer t.close()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	r := &deviceReport{Device: c.Device}
	if di, ok := t.target.(interface{ DeviceInfo() device.Info }); ok {
		r.setInfo(di.DeviceInfo())
	}
	r.setInfo(t.device)
	switch dev := t.target.(type) {
	case device.Chip:
		if err := r.chip(ctx, dev, t.target); err != nil {
			return unreachableError{fmt.Errorf("%s: %w", c.Device, err)}
		}
	case device.CodeDevice:
		if err := r.codeDevice(ctx, dev, t.target); err != nil {
			return unreachableError{fmt.Errorf("%s: %w", c.Device, err)}
		}
	}
	if c.JSON {
		return printJSON(e.stdout, r)
	}
	r.print(e.stdout)
	return nil
}

// setInfo fills the empty fields from what a driver or simulator knows.
func (r *deviceReport) setInfo(i device.Info) {
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	if r.Kind == "" {
		r.Kind = i.Kind
	}
	set(&r.Transport, i.Transport)
	set(&r.Path, i.Path)
	set(&r.Model, i.Model)
	set(&r.Serial, i.Serial)
	set(&r.Firmware, i.Firmware)
}

// chip asks a chip for getInfo, and its transport for what it announced.
func (r *deviceReport) chip(ctx context.Context, ch device.Chip, target any) error {
	r.Kind = device.KindChip
	if p, ok := target.(device.ProtocolReporter); ok {
		r.Profile = p.Protocols().String()
	}
	if a, ok := target.(interface{ ATR() []byte }); ok {
		r.ATR = fmt.Sprintf("% X", a.ATR())
	}
	if v, ok := target.(interface{ Version() string }); ok {
		r.Applet = v.Version()
	}
	if h, ok := target.(interface{ HIDInfo() ctaphid.DeviceInfo }); ok {
		hi := h.HIDInfo()
		r.CTAPHID = &hidReport{Protocol: int(hi.ProtocolVersion), Version: fmt.Sprintf("%d.%d.%d", hi.Major, hi.Minor, hi.Build),
			Capabilities: hi.Capabilities.String()}
	}
	info, err := ch.Info(ctx)
	if err != nil {
		return fmt.Errorf("getInfo: %w", err)
	}
	r.Versions, r.Options, r.Extensions = info.Versions, info.Options, info.Extensions
	r.AAGUID = devicetest.FormatAAGUID(info.AAGUID)
	r.MaxMsgSize, r.Transports, r.FirmwareVersion, r.PINProtocols = info.MaxMsgSize, info.Transports, info.FirmwareVersion, info.PINUVAuthProtocols
	for _, a := range info.Algorithms {
		r.Algorithms = append(r.Algorithms, a.Alg)
	}
	if r.Profile == "" {
		r.Profile = device.ProtocolsOf(info.Versions).String()
	}
	if r.Firmware == "" && info.FirmwareVersion != 0 {
		r.Firmware = fmt.Sprintf("%d (0x%06X)", info.FirmwareVersion, info.FirmwareVersion)
	}
	return nil
}

// codeDevice asks a code device for IDENTIFY and, when it can, STATUS.
func (r *deviceReport) codeDevice(ctx context.Context, d device.CodeDevice, target any) error {
	id, err := d.Identify(ctx)
	if err != nil {
		return fmt.Errorf("IDENTIFY: %w", err)
	}
	r.Code = id
	r.Kind, r.Serial, r.Model, r.Firmware = id.Kind, id.Serial, id.Model, id.Firmware
	if s, ok := target.(devicetest.StatusReader); ok {
		st, err := s.Status(ctx)
		if err != nil {
			return fmt.Errorf("STATUS: %w", err)
		}
		r.Status = st
	}
	return nil
}

// print writes the report as aligned lines.
func (r *deviceReport) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(name, format string, args ...any) {
		v := fmt.Sprintf(format, args...)
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", name, v)
		}
	}
	line("device", "%s", r.Device)
	line("kind", "%s", r.Kind)
	line("transport", "%s", strings.TrimSpace(r.Transport+" "+r.Path))
	line("model", "%s", r.Model)
	line("serial", "%s", orNone(r.Serial, "not reported"))
	if r.Kind == device.KindChip {
		line("profile", "%s", r.Profile)
		line("AAGUID", "%s", orNone(r.AAGUID, "none (U2F has no AAGUID)"))
	}
	line("firmware", "%s", orNone(r.Firmware, "not reported"))
	line("ATR", "%s", r.ATR)
	line("applet", "%s", r.Applet)
	if h := r.CTAPHID; h != nil {
		line("CTAPHID", "protocol %d, device version %s, capabilities %s", h.Protocol, h.Version, orNone(h.Capabilities, "none"))
	}
	line("versions", "%s", strings.Join(r.Versions, ", "))
	if len(r.Options) > 0 {
		var opts []string
		for k, v := range r.Options {
			opts = append(opts, fmt.Sprintf("%s=%v", k, v))
		}
		slices.Sort(opts)
		line("options", "%s", strings.Join(opts, " "))
	}
	line("extensions", "%s", strings.Join(r.Extensions, ", "))
	if len(r.Algorithms) > 0 {
		var algs []string
		for _, a := range r.Algorithms {
			algs = append(algs, coseName(a))
		}
		line("algorithms", "%s", strings.Join(algs, ", "))
	}
	if r.MaxMsgSize > 0 {
		line("max message", "%d bytes", r.MaxMsgSize)
	}
	line("transports", "%s", strings.Join(r.Transports, ", "))
	if id := r.Code; id != nil {
		line("protocol", "CDP/%d", id.ProtocolVersion)
		line("code", "%d digits, every %v, %s", id.Digits, id.Period, id.Algorithm)
	}
	if st := r.Status; st != nil {
		line("battery", "%d %%", st.Battery)
		line("clock", "%s", time.Unix(int64(st.Clock), 0).UTC().Format(time.RFC3339))
		line("presses", "%d", st.Presses)
		line("factory mode", "%v", st.FactoryMode)
	}
	tw.Flush()
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// coseName names a COSE algorithm (RFC 9053, IANA COSE registry).
func coseName(alg int64) string {
	switch alg {
	case -7:
		return "ES256 (-7)"
	case -8:
		return "EdDSA (-8)"
	case -35:
		return "ES384 (-35)"
	case -257:
		return "RS256 (-257)"
	}
	return fmt.Sprintf("COSE %d", alg)
}
