package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"go.bug.st/serial"

	"github.com/authbench/authbench/device/frame"
	"github.com/authbench/authbench/server/api"
	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/pskc"
)

// pskcCmd is `authbench pskc`: the secrets of code devices in PSKC
// documents (RFC 6030), from the provisioning station to the server.
type pskcCmd struct {
	Import pskcImportCmd `cmd:"" help:"Import a PSKC document of code device secrets into a running server (support token); all or nothing."`
	Export pskcExportCmd `cmd:"" help:"Be a provisioning station: read the secrets of code devices in factory mode (CDP/1 PROVISION) and write them as one encrypted PSKC document."`
}

// pskcImportCmd is `authbench pskc import`.
type pskcImportCmd struct {
	serverFlags
	tokenFlags
	File string `arg:"" type:"existingfile" placeholder:"FILE" help:"The PSKC document, or - for standard input."`
	JSON bool   `help:"Print what was imported as JSON."`
}

func (c *pskcImportCmd) Run(ctx context.Context, e *env) error {
	doc, err := readPSKC(c.File, e.in())
	if err != nil {
		return err
	}
	cl, err := c.authedClient(&c.tokenFlags, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	res, err := cl.ImportPSKC(ctx, doc)
	var ae *client.APIError
	switch {
	case errors.Is(err, client.ErrPSKCMAC):
		return fmt.Errorf("%s failed its integrity check (RFC 6030 §6.1.1): it was altered, or protected with another key than the server's --pskc-key-file; nothing was imported\n  (%v)", c.File, err)
	case errors.Is(err, client.ErrPSKCInvalid) && errors.As(err, &ae):
		return fmt.Errorf("the server cannot import %s, so nothing was imported: %s", c.File, ae.Message)
	case errors.Is(err, client.ErrForbidden):
		return fmt.Errorf("importing secrets needs a support token (the support token file of authbench serve), not a session\n  (%v)", err)
	case err != nil:
		return explainServer(&c.serverFlags, "", err)
	}
	if c.JSON {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "imported %s: %s\n", plural(res.Imported, "code device secret"), strings.Join(res.Serials, ", "))
	fmt.Fprintln(e.stdout, "each waits for its serial to be added to an identity and activated with a code the device shows")
	return nil
}

// readPSKC reads a PSKC document from path ("-": in), at most what the
// server takes.
func readPSKC(path string, in io.Reader) ([]byte, error) {
	r := in
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	doc, err := io.ReadAll(io.LimitReader(r, api.DefaultMaxPSKCBody+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", path, err)
	case len(doc) > api.DefaultMaxPSKCBody:
		return nil, fmt.Errorf("%s is larger than the %d MiB a server takes: split the batch", path, api.DefaultMaxPSKCBody>>20)
	case len(bytes.TrimSpace(doc)) == 0:
		return nil, fmt.Errorf("%s is empty", path)
	}
	return doc, nil
}

// pskcExportCmd is `authbench pskc export`: a provisioning station.
type pskcExportCmd struct {
	Device             []string      `required:"" placeholder:"serial:PATH" help:"A code device in factory mode on a serial port (CDP/1), such as serial:/dev/ttyUSB0 or the pty of authbench sim --factory. Repeat for a batch."`
	Out                string        `required:"" short:"o" placeholder:"FILE" help:"Write the PSKC document to FILE, created readable by its owner only; an existing file is not overwritten."`
	PSKCKeyFile        string        `name:"pskc-key-file" env:"AUTHBENCH_PSKC_KEY_FILE" placeholder:"FILE" help:"File holding, in hex, the pre-shared AES key (16, 24 or 32 bytes) the secrets are encrypted with (RFC 6030 §6.1): the server's --pskc-key-file. $AUTHBENCH_PSKC_KEY may hold the hex instead."`
	PSKCPassphraseFile string        `name:"pskc-passphrase-file" env:"AUTHBENCH_PSKC_PASSPHRASE_FILE" placeholder:"FILE" help:"Instead of a key: derive it with PBKDF2-HMAC-SHA256 from the passphrase in FILE's first line (RFC 6030 §6.2): the server's --pskc-passphrase-file. $AUTHBENCH_PSKC_PASSPHRASE may hold it instead."`
	KeyName            string        `placeholder:"NAME" help:"The key's name for the receiver (ds:KeyName; default Pre-shared-key with a key, none with a passphrase)."`
	Seal               bool          `help:"Once the document is written, set each device's clock and SEAL it: it leaves factory mode for good, and no station can read its secret again."`
	Timeout            time.Duration `default:"10s" placeholder:"DURATION" help:"Give up on a device that does not answer within this long."`
	JSON               bool          `help:"Print what was written as JSON."`
}

// exportedKey is one device of an export, as --json prints it (never the
// secret).
type exportedKey struct {
	Device        string `json:"device"`
	Serial        string `json:"serial"`
	Kind          string `json:"kind"`
	Model         string `json:"model,omitempty"`
	Digits        int    `json:"digits"`
	PeriodSeconds int    `json:"period_seconds"`
	Algorithm     string `json:"algorithm"`
	Sealed        bool   `json:"sealed"`
}

type exportResult struct {
	File       string        `json:"file"`
	Protection string        `json:"protection"`
	Keys       []exportedKey `json:"keys"`
}

func (c *pskcExportCmd) Run(ctx context.Context, e *env) error {
	key, err := pskcKey(c.PSKCKeyFile, os.Getenv(pskcKeyEnv))
	if err != nil {
		return err
	}
	pass, err := pskcPassphrase(c.PSKCPassphraseFile, os.Getenv(pskcPassphraseEnv))
	if err != nil {
		return err
	}
	enc := pskc.EncryptOptions{KeyName: c.KeyName, Key: key}
	protection := ""
	switch {
	case key != nil && pass != "":
		return usageError{errors.New("give a PSKC key (--pskc-key-file, $AUTHBENCH_PSKC_KEY) or a passphrase (--pskc-passphrase-file, $AUTHBENCH_PSKC_PASSPHRASE), not both")}
	case key != nil:
		protection = fmt.Sprintf("AES-%d-CBC under the pre-shared key, HMAC-SHA256 MACs (RFC 6030 §6.1)", len(key)*8)
	case pass != "":
		enc.Passphrase = []byte(pass)
		protection = fmt.Sprintf("AES-128-CBC under a key derived from the passphrase with PBKDF2-HMAC-SHA256, %d iterations, HMAC-SHA256 MACs (RFC 6030 §6.2)", pskc.DefaultIterations)
	default:
		return usageError{errors.New("the secrets are never written in the clear: give the server's PSKC key (--pskc-key-file FILE or $AUTHBENCH_PSKC_KEY) or passphrase (--pskc-passphrase-file FILE or $AUTHBENCH_PSKC_PASSPHRASE)")}
	}
	if _, err := os.Lstat(c.Out); err == nil {
		return fmt.Errorf("--out %s exists: a PSKC batch is never overwritten; choose another name", c.Out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--out: %w", err)
	}
	progress := e.stdout
	if c.JSON {
		progress = e.stderr
	}
	// The secrets are read first, the document written next, and only
	// then are the devices sealed: a batch that fails half-way leaves every
	// device readable again.
	var devs []*stationDevice
	defer func() {
		for _, d := range devs {
			d.close()
		}
	}()
	seen := map[string]string{}
	for _, sel := range c.Device {
		d, err := c.provision(ctx, sel)
		if err != nil {
			return err
		}
		devs = append(devs, d)
		if other, dup := seen[d.key.Serial]; dup {
			return fmt.Errorf("%s and %s report the same serial %s: nothing was written", other, sel, d.key.Serial)
		}
		seen[d.key.Serial] = sel
		fmt.Fprintf(progress, "%s: %s %s, %d digits every %ds (%s): secret read\n", sel, d.info.Kind, d.info.Serial, d.info.Digits, d.info.PeriodSeconds, d.info.Algorithm)
	}
	keys := make([]pskc.Key, len(devs))
	res := exportResult{File: c.Out, Protection: protection}
	for i, d := range devs {
		keys[i] = d.key
	}
	var doc bytes.Buffer
	if err := pskc.Write(&doc, keys, enc); err != nil {
		return err
	}
	if err := writeNew(c.Out, doc.Bytes()); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	var sealErrs []error
	for _, d := range devs {
		if c.Seal {
			if err := d.seal(ctx); err != nil {
				sealErrs = append(sealErrs, err)
			} else {
				fmt.Fprintf(progress, "%s: %s sealed\n", d.sel, d.info.Serial)
			}
		}
		res.Keys = append(res.Keys, d.info)
	}
	if c.JSON {
		if err := printJSON(e.stdout, res); err != nil {
			return err
		}
	} else {
		serials := make([]string, len(keys))
		for i, k := range keys {
			serials[i] = k.Serial
		}
		fmt.Fprintf(e.stdout, "wrote %s (%s) to %s: %s\n", plural(len(keys), "secret"), strings.Join(serials, ", "), c.Out, protection)
	}
	if len(sealErrs) > 0 {
		return fmt.Errorf("%s holds every secret, but not every device was sealed:\n  %w", c.Out, errors.Join(sealErrs...))
	}
	return nil
}

// stationDevice is a code device a provisioning station has read.
type stationDevice struct {
	sel  string
	port serial.Port
	host *frame.Host
	key  pskc.Key // with the secret
	info exportedKey
}

func (d *stationDevice) close() {
	d.key.Wipe()
	d.host.Close()
	d.port.Close()
}

// seal sets the device's clock and SEALs it: it leaves factory mode for
// good.
func (d *stationDevice) seal(ctx context.Context) error {
	if err := d.host.SetClock(ctx, time.Now()); err != nil {
		return fmt.Errorf("%s (%s): SET_CLOCK: %w", d.sel, d.info.Serial, err)
	}
	if err := d.host.Seal(ctx); err != nil {
		return fmt.Errorf("%s (%s): SEAL: %w", d.sel, d.info.Serial, err)
	}
	d.info.Sealed = true
	return nil
}

// provision reads the secret of the code device sel names, as a
// provisioning station does (CDP/1 §4.1, §4.2, docs/cdp1.md): IDENTIFY,
// then PROVISION with a new X25519 station key, whose answer only this
// station can open. The device stays open for seal; the caller closes it.
func (c *pskcExportCmd) provision(ctx context.Context, sel string) (*stationDevice, error) {
	path, ok := strings.CutPrefix(sel, "serial:")
	if !ok || path == "" {
		return nil, usageError{fmt.Errorf("--device %s: want serial:PATH, a code device on a serial port", sel)}
	}
	port, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		return nil, unreachableError{fmt.Errorf("cannot open %s: is the device connected? (authbench devices lists them)\n  (%v)", path, err)}
	}
	d := &stationDevice{sel: sel, port: port, host: frame.NewHost(port, &frame.Options{Timeout: c.Timeout})}
	ok = false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout+time.Second)
	defer cancel()
	info, err := d.host.Identify(ctx)
	if err != nil {
		return nil, unreachableError{fmt.Errorf("%s does not answer IDENTIFY like a CDP/1 code device: is it one, and is it on?\n  (%v)", sel, err)}
	}
	station, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var req frame.ProvisionRequest
	copy(req.StationKey[:], station.PublicKey().Bytes())
	resp, err := d.host.Provision(ctx, &req)
	var se *frame.StatusError
	switch {
	case errors.As(err, &se) && (se.Status == frame.StatusNotFactory || se.Status == frame.StatusSealed):
		return nil, fmt.Errorf("%s (%s) is sealed, not in factory mode: its secret can no longer be read; nothing was written\n  (%v)", sel, info.Serial, err)
	case err != nil:
		return nil, fmt.Errorf("%s (%s): PROVISION: %w", sel, info.Serial, err)
	}
	secret, err := resp.Open(station, info.Serial)
	if err != nil {
		return nil, fmt.Errorf("%s (%s): the sealed secret does not open: %w", sel, info.Serial, err)
	}
	d.key = pskc.Key{Serial: info.Serial, Model: info.Model, ID: info.Serial + "#1", Algorithm: pskc.TOTP,
		Hash: info.Algorithm, Digits: info.Digits, Period: info.Period, Secret: secret}
	d.info = exportedKey{Device: sel, Serial: info.Serial, Kind: string(info.Kind), Model: info.Model, Digits: info.Digits,
		PeriodSeconds: int(info.Period / time.Second), Algorithm: info.Algorithm.String()}
	ok = true
	return d, nil
}
