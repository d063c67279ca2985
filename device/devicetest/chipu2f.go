package devicetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/ctaphid"
	"github.com/authbench/authbench/device/u2f"
)

// The checks of U2F (CTAP1) and of how a transport announces the profile.

// hidInfoer is met by chips reached over CTAPHID (driver/usb).
type hidInfoer interface {
	HIDInfo() ctaphid.DeviceInfo
}

// selectVersioner is met by chips reached over ISO 7816 (driver/pcsc): the
// applet's answer to SELECT.
type selectVersioner interface {
	Version() string
}

func checkTransportProfile(ctx context.Context, c *chipRun) error {
	p := c.protocols
	var problems []string
	checked := false
	if h, ok := c.Target.(hidInfoer); ok {
		checked = true
		caps := h.HIDInfo().Capabilities
		c.Logf("CTAPHID_INIT capabilities %s; the chip speaks %s", caps, p.Describe())
		if caps.Has(ctaphid.CapCBOR) != p.Has(device.ProtocolCTAP2) {
			problems = append(problems, fmt.Sprintf("CTAPHID_INIT capabilities %s: the CBOR flag must be set exactly when the chip speaks CTAP2, and it is %s", caps, p))
		}
		if caps.Has(ctaphid.CapNMSG) == p.Has(device.ProtocolU2F) {
			problems = append(problems, fmt.Sprintf("CTAPHID_INIT capabilities %s: the NMSG flag must be set exactly when the chip lacks U2F, and it is %s", caps, p))
		}
	}
	if s, ok := c.Target.(selectVersioner); ok {
		checked = true
		v := s.Version()
		c.Logf("SELECT answered %q; the chip speaks %s", v, p.Describe())
		switch {
		case p.Has(device.ProtocolU2F) && v != apdu.VersionU2F:
			problems = append(problems, fmt.Sprintf("SELECT answered %q, but the chip speaks U2F: a chip that implements U2F answers %q, also when it implements CTAP2 too (CTAP 2.1 §11.3.3), or U2F-only hosts cannot use it", v, apdu.VersionU2F))
		case !p.Has(device.ProtocolU2F) && !strings.HasPrefix(v, "FIDO_2_"):
			problems = append(problems, fmt.Sprintf("SELECT answered %q, but the chip speaks no U2F: a CTAP2-only chip answers %q (CTAP 2.1 §11.3.3)", v, apdu.VersionFIDO2))
		}
	}
	if !checked {
		return Skipf("the target does not show what its transport announces (CTAPHID_INIT capabilities, or the answer to SELECT); an in-process target has no transport")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// pinUVAuthCases are the requests of checkPINUVAuthParam: CTAP 2.1 §6.1.2
// and §6.2.2 step 2, for a chip without clientPin and pinUvAuthToken.
func (c *chipRun) pinUVAuthCases() []struct {
	what   string
	cmd    byte
	params map[int]any
	want   byte
} {
	mc := func(extra map[int]any) map[int]any {
		p := c.rawMakeCredential()
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	ga := func(extra map[int]any) map[int]any {
		p := map[int]any{1: c.o.RPID, 2: c.random(ctap2.ClientDataHashSize),
			3: []any{map[string]any{"type": ctap2.CredentialTypePublicKey, "id": c.random(32)}}}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	type row = struct {
		what   string
		cmd    byte
		params map[int]any
		want   byte
	}
	return []row{
		{"makeCredential with a zero-length pinUvAuthParam and no pinUvAuthProtocol", ctap2.CmdMakeCredential, mc(map[int]any{8: []byte{}}), ctap2.CodeMissingParameter},
		{"makeCredential with a zero-length pinUvAuthParam and pinUvAuthProtocol 1", ctap2.CmdMakeCredential, mc(map[int]any{8: []byte{}, 9: 1}), ctap2.CodeInvalidParameter},
		{"makeCredential with a 16-byte pinUvAuthParam and no pinUvAuthProtocol", ctap2.CmdMakeCredential, mc(map[int]any{8: make([]byte, 16)}), ctap2.CodeMissingParameter},
		{"getAssertion with a zero-length pinUvAuthParam and no pinUvAuthProtocol", ctap2.CmdGetAssertion, ga(map[int]any{6: []byte{}}), ctap2.CodeMissingParameter},
		{"getAssertion with a zero-length pinUvAuthParam and pinUvAuthProtocol 2", ctap2.CmdGetAssertion, ga(map[int]any{6: []byte{}, 7: 2}), ctap2.CodeInvalidParameter},
	}
}

func checkPINUVAuthParam(ctx context.Context, c *chipRun) error {
	info, err := c.info(ctx)
	if err != nil {
		return err
	}
	if _, ok := info.Options["clientPin"]; ok || len(info.PINUVAuthProtocols) > 0 || info.Options["pinUvAuthToken"] {
		return Skipf("the chip supports clientPin or pinUvAuthToken (options %v, pinUvAuthProtocols %v): step 1 of §6.1.2 applies to it instead", info.Options, info.PINUVAuthProtocols)
	}
	var problems []string
	for _, tc := range c.pinUVAuthCases() {
		st, _, err := c.raw(ctx, tc.cmd, tc.params)
		if err != nil {
			return err
		}
		c.Logf("%s: %s", tc.what, statusText(st))
		if st != tc.want {
			problems = append(problems, fmt.Sprintf("%s answered %s, want %s", tc.what, statusText(st), statusText(tc.want)))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// needU2F returns the target's U2F client, or a skip.
func (c *chipRun) needU2F() (*u2f.Client, error) {
	cl := c.u2f()
	if cl == nil {
		return nil, Skipf("the target offers no U2F messages (a U2F() client, u2f.Messenger, ServeU2F or u2f.Authenticator)")
	}
	return cl, nil
}

func checkU2FVersion(ctx context.Context, c *chipRun) error {
	cl, err := c.needU2F()
	if err != nil {
		return err
	}
	v, err := cl.Version(ctx)
	if errors.Is(err, device.ErrNotSupported) {
		return Skipf("U2F is not reachable through this target: %v", err)
	}
	if err != nil {
		return fmt.Errorf("U2F_VERSION failed: %w", err)
	}
	if v != u2f.Version {
		return fmt.Errorf("U2F_VERSION answered %q, want %q", v, u2f.Version)
	}
	return nil
}

// u2fRegistration is the U2F credential the U2F checks share.
type u2fRegistration struct {
	app       [32]byte
	challenge [32]byte
	reg       *u2f.RegisterResponse
}

// u2fFixture registers once per run for application "u2f."+RPID. The
// registration is checked by checkU2F, not here, so that a chip whose
// signatures are wrong still shows whether it knows its key handles.
func (c *chipRun) u2fFixture(ctx context.Context) (*u2fRegistration, error) {
	v, err := c.Memo("u2f registration", func() (any, error) {
		cl := c.u2fClient()
		if cl == nil {
			return nil, Skipf("the target offers no U2F messages (U2FClient, u2f.Messenger or u2f.Authenticator)")
		}
		f := &u2fRegistration{app: ctap2.RPIDHash("u2f." + c.o.RPID)}
		copy(f.challenge[:], c.random(32))
		reg, err := cl.Register(ctx, f.challenge, f.app)
		if errors.Is(err, device.ErrNotSupported) {
			return nil, Skipf("U2F is not reachable through this target: %v", err)
		}
		if err != nil {
			return nil, fmt.Errorf("U2F register failed: %w", err)
		}
		f.reg = reg
		return f, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*u2fRegistration), nil
}

// u2fCertificate judges the attestation certificate of a U2F registration
// (or of a fido-u2f attestation): a self-signed certificate of the
// credential key itself is self attestation (accepted unless attestation
// is required); any other must chain to the roots.
func (c *chipRun) u2fCertificate(cert *x509.Certificate, credKey *ecdsa.PublicKey) error {
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); ok && k.Equal(credKey) && bytes.Equal(cert.RawSubject, cert.RawIssuer) &&
		cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil {
		c.Logf("self attestation: the certificate %q is signed by the credential key itself; the chip model is not attested", cert.Subject)
		if c.o.RequireAttestation {
			return errors.New("self attestation only (a self-signed certificate of the credential key), and attestation is required")
		}
		return nil
	}
	return c.verifyChain(cert, nil)
}

func checkU2FCheckOnly(ctx context.Context, c *chipRun) error {
	cl, err := c.needU2F()
	if err != nil {
		return err
	}
	f, err := c.u2fFixture(ctx)
	if err != nil {
		return fmt.Errorf("needs a U2F registration, which could not be made: %w", err)
	}
	var problems []string
	if known, err := cl.CheckKeyHandle(ctx, f.app, f.reg.KeyHandle); err != nil || !known {
		problems = append(problems, fmt.Sprintf("check-only with the chip's own key handle: known %v, %v; want status 6985", known, err))
	}
	other := ctap2.RPIDHash("other." + c.o.RPID)
	if known, err := cl.CheckKeyHandle(ctx, other, f.reg.KeyHandle); err != nil || known {
		problems = append(problems, fmt.Sprintf("check-only with the chip's key handle for another application: known %v, %v; want status 6A80", known, err))
	}
	if known, err := cl.CheckKeyHandle(ctx, f.app, c.random(len(f.reg.KeyHandle))); err != nil || known {
		problems = append(problems, fmt.Sprintf("check-only with a made-up key handle: known %v, %v; want status 6A80", known, err))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func checkU2FErrors(ctx context.Context, c *chipRun) error {
	m := rawU2F(c.Target)
	if m == nil {
		return Skipf("the target offers no raw U2F messages (u2f.Messenger or ServeU2F); the U2F client cannot send these malformed requests")
	}
	cases := []struct {
		what string
		cmd  apdu.Command
		want uint16
	}{
		{"U2F_REGISTER with 63 bytes of data", apdu.Command{INS: u2f.InsRegister, Data: c.random(63), Ne: apdu.MaxExtendedNe}, u2f.SWWrongLength},
		{"U2F_AUTHENTICATE whose key handle length exceeds the data", apdu.Command{INS: u2f.InsAuthenticate, P1: u2f.ControlCheckOnly,
			Data: append(c.random(64), 200, 1, 2, 3), Ne: apdu.MaxExtendedNe}, u2f.SWWrongLength},
		{"instruction 55", apdu.Command{INS: 0x55, Ne: apdu.MaxExtendedNe}, u2f.SWINSNotSupported},
		{"U2F_VERSION with class 40", apdu.Command{CLA: 0x40, INS: u2f.InsVersion, Ne: apdu.MaxExtendedNe}, u2f.SWCLANotSupported},
	}
	var problems []string
	for _, tc := range cases {
		req, err := tc.cmd.EncodeExtended()
		if err != nil {
			return fmt.Errorf("%s: %w", tc.what, err)
		}
		raw, err := m.APDU(ctx, req)
		if errors.Is(err, device.ErrNotSupported) {
			return Skipf("U2F is not reachable through this target: %v", err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tc.what, err)
		}
		resp, err := apdu.ParseResponse(raw)
		if err != nil {
			return fmt.Errorf("%s: the answer is no response APDU: %w", tc.what, err)
		}
		c.Logf("%s: status %04X", tc.what, resp.SW)
		if resp.SW != tc.want {
			problems = append(problems, fmt.Sprintf("%s answered %04X, want %04X", tc.what, resp.SW, tc.want))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
