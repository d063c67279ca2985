package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// credentialsCmd is `authbench credentials`.
type credentialsCmd struct {
	List   credentialsListCmd   `cmd:"" help:"List the discoverable credentials a chip holds for a relying party."`
	Delete credentialsDeleteCmd `cmd:"" help:"Delete one credential from a chip (needs CTAP 2.1 credential management, which MitID chips lack)."`
}

// Help is the detail of `authbench help credentials`.
func (*credentialsCmd) Help() string {
	return "CTAP 2.1 credential management (authenticatorCredentialManagement, §6.8) lists and deletes credentials " +
		"only with a PIN/UV auth token, and MitID chips have neither a PIN nor built-in user verification (getInfo " +
		"offers no credMgmt): they cannot list all their credentials or delete one. What a chip without a PIN does " +
		"offer: getAssertion with no allowList and option up=false returns, without a touch, the discoverable " +
		"credentials it holds for one relying party; list --rp ID does that. To erase every credential, use authbench reset."
}

// credentialsListCmd is `authbench credentials list`.
type credentialsListCmd struct {
	Device  string        `required:"" placeholder:"SELECTOR" help:"The chip: pcsc:N or pcsc:READER, usb[:VID:PID[:N]], udp[:HOST:PORT] or sim:chip."`
	RP      string        `name:"rp" placeholder:"RPID" help:"The relying party whose discoverable credentials to list (required: a chip without credential management cannot list them all)."`
	Timeout time.Duration `default:"10s" placeholder:"DURATION" help:"Limit for opening the chip and asking it."`
	JSON    bool          `help:"Print the credentials as JSON."`
}

// credentialsDeleteCmd is `authbench credentials delete`.
type credentialsDeleteCmd struct {
	Device string `required:"" placeholder:"SELECTOR" help:"The chip."`
	ID     string `required:"" name:"id" placeholder:"HEX" help:"The credential ID, in hex (as credentials list shows it)."`
}

// listedCredential is one row of `authbench credentials list`.
type listedCredential struct {
	RPID            string `json:"rp_id"`
	CredentialID    string `json:"credential_id"`
	UserID          string `json:"user_id,omitempty"`
	UserName        string `json:"user_name,omitempty"`
	UserDisplayName string `json:"user_display_name,omitempty"`
	SignCount       uint32 `json:"sign_count"`
}

// errNoCredentialManagement is the answer to listing or deleting on a chip
// that does not offer CTAP 2.1 credential management.
func errNoCredentialManagement(sel string, info *ctap2.Info, what string) error {
	if info != nil && (info.Options["credMgmt"] || info.Options["credentialMgmtPreview"]) {
		return fmt.Errorf("%s offers credential management, but %s needs a PIN/UV auth token (CTAP 2.1 §6.8), and authbench does not speak the PIN protocol: use ykman fido credentials or fido2-token", sel, what)
	}
	return fmt.Errorf("%s does not support %s: it offers no credential management (getInfo has no credMgmt option; CTAP 2.1 §6.8 needs a PIN or built-in user verification, which MitID chips lack)", sel, what)
}

func (c *credentialsListCmd) Run(ctx context.Context, e *env) error {
	t, err := openDevice(ctx, c.Device, targetOptions{})
	if err != nil {
		return err
	}
	defer t.close()
	ch, ok := t.target.(device.Chip)
	if !ok {
		return usageError{fmt.Errorf("--device %s is a code device: it holds one OTP secret, no credentials", c.Device)}
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	info, err := ch.Info(ctx)
	if err != nil {
		return unreachableError{explainDevice(c.Device, err)}
	}
	if !device.ProtocolsOf(info.Versions).Has(device.ProtocolCTAP2) {
		return fmt.Errorf("%s is a U2F-only chip: U2F keeps no discoverable credentials, so there is nothing it can list (its key handles live with the relying parties)", c.Device)
	}
	if c.RP == "" {
		return fmt.Errorf("%v.\nWith --rp ID it lists the discoverable credentials it holds for that relying party", errNoCredentialManagement(c.Device, info, "listing every credential"))
	}
	creds, err := discoverable(ctx, ch, c.RP)
	if err != nil {
		var se *ctap2.StatusError
		if errors.As(err, &se) {
			return fmt.Errorf("%s refused to list the credentials of %s: %w", c.Device, c.RP, err)
		}
		return unreachableError{explainDevice(c.Device, err)}
	}
	if c.JSON {
		if creds == nil {
			creds = []listedCredential{}
		}
		return printJSON(e.stdout, creds)
	}
	printCredentials(e.stdout, c.RP, creds)
	return nil
}

// discoverable lists the discoverable credentials ch holds for rpID:
// getAssertion without allowList and with up=false (CTAP 2.1 §6.2, no touch
// needed), then getNextAssertion for the others. Each assertion counts, so
// the sign counters reported are one up on before.
func discoverable(ctx context.Context, ch device.Chip, rpID string) ([]listedCredential, error) {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	cdh := sha256.Sum256(nonce)
	a, err := ch.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: rpID, ClientDataHash: cdh[:], Options: map[string]bool{"up": false}})
	if errors.Is(err, ctap2.ErrNoCredentials) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	n := a.NumberOfCredentials
	if n == 0 {
		n = 1
	}
	var out []listedCredential
	for i := uint64(0); ; i++ {
		out = append(out, credentialOf(rpID, a))
		if i+1 >= n {
			return out, nil
		}
		next, ok := ch.(device.NextAssertioner)
		if !ok {
			return out, nil
		}
		if a, err = next.GetNextAssertion(ctx); err != nil {
			return out, err
		}
	}
}

func credentialOf(rpID string, a *ctap2.Assertion) listedCredential {
	c := listedCredential{RPID: rpID}
	if a.Credential != nil {
		c.CredentialID = hex.EncodeToString(a.Credential.ID)
	}
	if u := a.User; u != nil {
		c.UserID, c.UserName, c.UserDisplayName = hex.EncodeToString(u.ID), u.Name, u.DisplayName
	}
	if ad, err := ctap2.ParseAuthData(a.AuthData); err == nil {
		c.SignCount = ad.SignCount
	}
	return c
}

func printCredentials(w io.Writer, rpID string, creds []listedCredential) {
	if len(creds) == 0 {
		fmt.Fprintf(w, "no discoverable credentials for %s\n", rpID)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RP\tUSER ID\tNAME\tCREDENTIAL ID\tSIGN COUNT")
	for _, c := range creds {
		user := c.UserID
		if b, err := hex.DecodeString(c.UserID); err == nil && printable(b) {
			user += fmt.Sprintf(" (%q)", b)
		}
		name := c.UserName
		if c.UserDisplayName != "" {
			name += " (" + c.UserDisplayName + ")"
		}
		if name == "" {
			name = "-" // a chip names the user only after user verification (CTAP 2.1 §6.2.2)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", c.RPID, user, name, c.CredentialID, c.SignCount)
	}
	tw.Flush()
	fmt.Fprintln(w, "(listing used one assertion per credential: each sign counter went up by one)")
}

func (c *credentialsDeleteCmd) Run(ctx context.Context, e *env) error {
	if _, err := hex.DecodeString(c.ID); err != nil || c.ID == "" {
		return usageError{fmt.Errorf("--id %q: want the credential ID in hex", c.ID)}
	}
	t, err := openDevice(ctx, c.Device, targetOptions{})
	if err != nil {
		return err
	}
	defer t.close()
	ch, ok := t.target.(device.Chip)
	if !ok {
		return usageError{fmt.Errorf("--device %s is a code device: it holds one OTP secret, no credentials", c.Device)}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := ch.Info(ctx)
	if err != nil {
		return unreachableError{explainDevice(c.Device, err)}
	}
	return fmt.Errorf("%v.\nTo erase every credential on it, use authbench reset", errNoCredentialManagement(c.Device, info, "deleting a credential"))
}
