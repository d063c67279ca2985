package devicetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

// DefaultRPID is the relying party ID the chip suite registers with when
// ChipOptions.RPID is empty. Checks that make resident credentials use
// subdomains of it, with fixed user IDs, so that repeated runs replace their
// own credentials instead of filling the chip.
const DefaultRPID = "conformance.authbench.test"

// ChipOptions configure ChipSuite. The zero value is the default.
type ChipOptions struct {
	// RPID is the relying party ID of the credentials the checks make
	// (default DefaultRPID).
	RPID string
	// Roots are the trusted attestation roots. When nil, attestation
	// signatures are still verified but certificate chains are not, and
	// the report says so. The simulator's test CA is
	// testdata/attestation/ca.pem.
	Roots *x509.CertPool
	// RequireAttestation makes an attestation of format "none" fail.
	RequireAttestation bool
	// Destructive allows checks that erase the chip (authenticatorReset).
	// Without it they are skipped.
	Destructive bool
	// WithholdPresence is the bench's control over the chip's button:
	// called with true, no touch may come until it is called with false.
	// A bench tells the operator to keep off the chip; a simulator harness
	// switches its presence policy. When nil, the check that cancels a
	// request waiting for a touch is skipped.
	WithholdPresence func(hold bool)
	// TouchNeeded, when not nil, is called once per request when the chip
	// reports that it waits for a touch (keepalive UPNEEDED), with the name
	// of the running check, so that a bench can prompt its operator. It
	// must not block.
	TouchNeeded func(check string)
	// Rand is the source of client data hashes, user IDs and made-up
	// credential IDs (nil means crypto/rand).
	Rand io.Reader
	// Now is the time attestation certificates are checked at (nil means
	// time.Now).
	Now func() time.Time
}

// U2FClient is the optional ability of a chip target to speak U2F (CTAP1)
// as a host, with the signatures of *u2f.Client.
type U2FClient interface {
	Register(ctx context.Context, challenge, app [32]byte) (*u2f.RegisterResponse, error)
	Authenticate(ctx context.Context, control byte, challenge, app [32]byte, keyHandle []byte) (*u2f.AuthenticateResponse, error)
}

// u2fProvider is met by MessengerChip.
type u2fProvider interface {
	U2F() *u2f.Client
}

// ctap2Server is the device side of CTAP2, met in-process by simulators
// (and by ctap2.Handler): it lets raw checks run without a transport.
type ctap2Server interface {
	ServeCTAP2(ctx context.Context, req []byte) []byte
}

// u2fServer is the device side of U2F, met in-process by simulators.
type u2fServer interface {
	ServeU2F(ctx context.Context, req []byte) []byte
}

// ChipSuite returns the conformance suite for chips (FIDO authenticators,
// CTAP 2.1 and U2F). It first finds the chip's profile (FIDO2, U2F-only or
// CTAP2-only; see Suite.Profile): a FIDO2 chip runs the CTAP2 checks and
// the U2F checks, a U2F-only chip the U2F checks and the checks of what
// every chip does (make a credential, sign, count, exclude, wait for a
// touch), driven through the CTAP 2.1 §10 translation (u2f.Chip), and a
// CTAP2-only chip all but the U2F ones; the checks of other profiles are
// reported as skipped, naming the profile.
//
// The target is a device.Chip; these optional abilities, found by type
// assertion, enable more checks:
//   - raw CTAP2 messages: ctap2.Messenger (the CBOR method of
//     *ctaphid.Conn, *apdu.Client and MessengerChip), or a device-side
//     ServeCTAP2 method (a simulator in-process): canonical CBOR of
//     getInfo, and malformed requests the typed client refuses to send;
//   - device.NextAssertioner, device.Resetter, device.Selector;
//   - U2F: U2FClient, a U2F() *u2f.Client method (MessengerChip and the
//     drivers), u2f.Messenger (an APDU method), u2f.Authenticator or a
//     device-side ServeU2F method; raw U2F messages need one of the last
//     two (or a MessengerChip over a U2F messenger);
//   - what the transport announces: HIDInfo() ctaphid.DeviceInfo
//     (driver/usb) and Version() string, the answer to SELECT
//     (driver/pcsc).
//
// On hardware most checks need a touch; they share one credential to keep
// the touches few (see ChipOptions.TouchNeeded).
func ChipSuite(opts ChipOptions) Suite {
	o := &opts
	if o.RPID == "" {
		o.RPID = DefaultRPID
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	checks := []Check{
		o.ctap2Check("info.fields", "getInfo lists FIDO_2_0, a 16-byte AAGUID, ES256 and sane options.",
			"CTAP 2.1 §6.4", checkInfoFields),
		o.ctap2Check("info.canonical", "The getInfo answer is canonical CTAP2 CBOR and re-encodes to the same bytes.",
			"CTAP 2.1 §8 (CTAP2 canonical CBOR encoding form)", checkInfoCanonical),
		o.check("transport.profile", "The transport announces what the chip speaks: CBOR in the CTAPHID_INIT capabilities exactly when it speaks CTAP2, NMSG exactly when it lacks U2F; SELECT answers U2F_V2 whenever it speaks U2F (dual-mode too) and FIDO_2_x only when CTAP2-only.",
			"CTAP 2.1 §11.2.9.1.3, §11.3.3", checkTransportProfile),
		o.check("makecredential.authdata", "makeCredential returns authenticator data with UP and AT set, the right rpIdHash and an ES256 key.",
			"CTAP 2.1 §6.1.2, §10.2; WebAuthn §6.1, §6.5.1", checkMakeCredentialAuthData),
		o.check("makecredential.attestation", "The attestation statement verifies (packed: x5c leaf signature over authData||clientDataHash, chained to the roots; fido-u2f: the U2F registration signature; none: empty).",
			"WebAuthn §8.2, §8.2.1, §8.6, §8.7", checkAttestation),
		o.check("getassertion.signature", "getAssertion with an allowList signs authData||clientDataHash with the credential's key.",
			"CTAP 2.1 §6.2.2, §10.3; WebAuthn §7.2", checkAssertionSignature),
		o.check("getassertion.counter", "The signature counter increases from one assertion to the next.",
			"WebAuthn §6.1.1 (signature counter)", checkCounter),
		o.check("getassertion.unknown-credential", "getAssertion naming only a credential the chip never made answers CTAP2_ERR_NO_CREDENTIALS (U2F: the check-only authenticate answers 6A80).",
			"CTAP 2.1 §6.2.2, §10.3", checkUnknownCredential),
		o.check("makecredential.exclude-list", "makeCredential whose excludeList names a credential of the chip answers CTAP2_ERR_CREDENTIAL_EXCLUDED (U2F: the check-only authenticate knows the key handle).",
			"CTAP 2.1 §6.1.2 step 12, §10.2", checkExcludeList),
		o.ctap2Check("makecredential.unsupported-algorithm", "makeCredential offering only an algorithm the chip lacks answers CTAP2_ERR_UNSUPPORTED_ALGORITHM.",
			"CTAP 2.1 §6.1.2 step 3", checkUnsupportedAlgorithm),
		o.ctap2Check("makecredential.long-message", "A makeCredential close to maxMsgSize (many HID packets, chained APDUs) arrives whole: its last excludeList entry is honoured.",
			"CTAP 2.1 §11.2.4, §11.3.5", checkLongMessage),
		o.ctap2Check("error.client-data-hash-length", "makeCredential with a 31-byte clientDataHash is refused with a parameter error.",
			"CTAP 2.1 §6.1.1, §8.2", checkBadHashLength),
		o.ctap2Check("error.missing-parameter", "makeCredential without clientDataHash answers CTAP2_ERR_MISSING_PARAMETER.",
			"CTAP 2.1 §6.1.2 step 1, §8.2", checkMissingParameter),
		o.ctap2Check("error.pin-uv-auth-param", "A chip without clientPin or pinUvAuthToken answers a present pinUvAuthParam, even a zero-length one, with CTAP2_ERR_MISSING_PARAMETER without pinUvAuthProtocol and CTAP1_ERR_INVALID_PARAMETER with an unsupported one.",
			"CTAP 2.1 §6.1.2 step 2, §6.2.2 step 2", checkPINUVAuthParam),
		o.ctap2Check("error.wrong-type", "makeCredential whose rp is a text string answers CTAP2_ERR_CBOR_UNEXPECTED_TYPE.",
			"CTAP 2.1 §8.2", checkWrongType),
		o.ctap2Check("error.invalid-command", "An unassigned command byte answers CTAP1_ERR_INVALID_COMMAND.",
			"CTAP 2.1 §6, §8.2", checkInvalidCommand),
		o.ctap2Check("error.next-without-assertion", "getNextAssertion with no getAssertion before it answers CTAP2_ERR_NOT_ALLOWED.",
			"CTAP 2.1 §6.3", checkNextWithoutAssertion),
		o.ctap2Check("resident.replace", "A resident credential for the same RP and user ID replaces the old one: getAssertion without allowList returns only the new one.",
			"CTAP 2.1 §6.1.2 step 17", checkResidentReplace),
		o.ctap2Check("getassertion.next", "Two resident credentials of one RP come back newest first, the second through getNextAssertion.",
			"CTAP 2.1 §6.2.2, §6.3", checkNextAssertion),
		o.check("cancel.presence", "A request waiting for a touch ends with CTAP2_ERR_KEEPALIVE_CANCEL when the host cancels (U2F: when the host stops asking), and the chip still answers.",
			"CTAP 2.1 §11.2.9.1.5 (CTAPHID_CANCEL), §11.3.4; FIDO U2F Raw Message Formats §4.2", checkCancel),
		o.u2fCheck("u2f.version", "U2F_VERSION answers \"U2F_V2\".",
			"FIDO U2F Raw Message Formats §6.1", checkU2FVersion),
		o.u2fCheck("u2f.register-authenticate", "U2F register verifies against its attestation certificate, authenticate against the new key, with a rising counter.",
			"FIDO U2F Raw Message Formats §4, §5", checkU2F),
		o.u2fCheck("u2f.check-only", "A check-only authenticate answers 6985 for the chip's own key handle and 6A80 for another application's, and signs nothing.",
			"FIDO U2F Raw Message Formats §5.1, §5.3", checkU2FCheckOnly),
		o.u2fCheck("u2f.errors", "U2F requests of the wrong length answer 6700, unknown instructions 6D00, another class 6E00.",
			"FIDO U2F Raw Message Formats §3.3; ISO/IEC 7816-4", checkU2FErrors),
		o.ctap2Check("selection", "authenticatorSelection returns after a touch.",
			"CTAP 2.1 §6.9", checkSelection),
		o.ctap2Check("reset", "authenticatorReset erases the credentials (destructive).",
			"CTAP 2.1 §6.6", checkReset),
	}
	return Suite{
		Name:     "chip",
		Checks:   checks,
		Accept:   accepts[device.Chip]("device.Chip"),
		Profile:  chipProfile,
		Describe: describeChip,
		Probe:    probeChip,
	}
}

// The chip profiles each check belongs to (device.Protocols names).
var (
	ctap2Profiles = []string{device.ProfileFIDO2.String(), device.ProfileCTAP2Only.String()}
	u2fProfiles   = []string{device.ProfileFIDO2.String(), device.ProfileU2FOnly.String()}
)

// chipUnderTest is the chip the checks drive, as the profile detection
// found it.
type chipUnderTest struct {
	chip      device.Chip
	protocols device.Protocols
}

// looseVersions sends a raw getInfo and reads the versions (key 1) of a
// successful answer without judging the rest of it.
func looseVersions(ctx context.Context, target any) ([]string, bool) {
	m := rawCTAP2(target)
	if m == nil {
		return nil, false
	}
	resp, err := m.CBOR(ctx, []byte{ctap2.CmdGetInfo})
	if err != nil || len(resp) < 2 || resp[0] != ctap2.CodeOK {
		return nil, false
	}
	var v struct {
		Versions []string `cbor:"1,keyasint"`
	}
	if cbor.Unmarshal(resp[1:], &v) != nil || len(v.Versions) == 0 {
		return nil, false
	}
	return v.Versions, true
}

// chipProfile is the chip suite's Suite.Profile: the chip's getInfo
// versions say what it speaks (for a U2F-only chip behind a driver, the
// CTAP 2.1 §10 translation answers "U2F_V2" alone). A target whose getInfo
// is refused but that answers U2F_VERSION is a U2F-only chip reached
// without the translation (a raw CTAPHID connection, a simulator
// in-process): the checks then drive it through u2f.Chip.
func chipProfile(ctx context.Context, r *Run) (string, error) {
	cut, err := underTest(ctx, r)
	if err != nil {
		return "", err
	}
	return cut.protocols.String(), nil
}

// underTest returns the chip the checks drive, found once per run.
func underTest(ctx context.Context, r *Run) (*chipUnderTest, error) {
	v, err := r.Memo("chip", func() (any, error) {
		target, err := targetAs[device.Chip](r.Target, "device.Chip")
		if err != nil {
			return nil, err
		}
		info, infoErr := target.Info(ctx)
		versions := []string(nil)
		if infoErr == nil {
			versions = info.Versions
		} else if vs, ok := looseVersions(ctx, r.Target); ok {
			// A getInfo answer that the typed client refused (the
			// info.* checks say why): its versions still tell the
			// profile.
			r.Logf("getInfo answered, but not as CTAP 2.1 asks (%v); the profile is taken from its versions", infoErr)
			versions, infoErr = vs, nil
		}
		if infoErr == nil {
			p := device.ProtocolsOf(versions)
			if p == 0 {
				return nil, fmt.Errorf("getInfo lists versions %q: neither U2F_V2 nor a FIDO_2_ version", versions)
			}
			r.Logf("getInfo versions %q: profile %s", versions, p.Describe())
			return &chipUnderTest{chip: target, protocols: p}, nil
		}
		cl := u2fClientOf(r.Target)
		if cl == nil {
			return nil, fmt.Errorf("getInfo failed (%w), and the target offers no U2F to try instead", infoErr)
		}
		v, err := cl.Version(ctx)
		if err != nil || v != u2f.Version {
			return nil, fmt.Errorf("getInfo failed (%v), and U2F_VERSION answered %q, %v", infoErr, v, err)
		}
		r.Logf("getInfo refused (%v) and U2F_VERSION answered %s: a U2F-only chip, checked through the CTAP 2.1 §10 translation", infoErr, v)
		return &chipUnderTest{chip: u2f.NewChip(cl), protocols: device.ProfileU2FOnly}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*chipUnderTest), nil
}

// chipRun is what a chip check works with.
type chipRun struct {
	*Run
	chip      device.Chip // the target, or the U2F translation of it
	protocols device.Protocols
	o         *ChipOptions
}

func (o *ChipOptions) check(name, desc, spec string, f func(ctx context.Context, c *chipRun) error) Check {
	return Check{Name: name, Description: desc, Spec: spec, Run: func(ctx context.Context, r *Run) error {
		cut, err := underTest(ctx, r)
		if err != nil {
			return err
		}
		c := &chipRun{Run: r, chip: cut.chip, protocols: cut.protocols, o: o}
		if o.TouchNeeded != nil {
			ctx = ctap2.WithKeepalive(ctx, c.keepalive())
		}
		return f(ctx, c)
	}}
}

// ctap2Check is a check of the CTAP2 authenticator API: skipped for a
// U2F-only chip.
func (o *ChipOptions) ctap2Check(name, desc, spec string, f func(ctx context.Context, c *chipRun) error) Check {
	c := o.check(name, desc, spec, f)
	c.Profiles = ctap2Profiles
	return c
}

// u2fCheck is a check of U2F (CTAP1): skipped for a CTAP2-only chip.
func (o *ChipOptions) u2fCheck(name, desc, spec string, f func(ctx context.Context, c *chipRun) error) Check {
	c := o.check(name, desc, spec, f)
	c.Profiles = u2fProfiles
	return c
}

// keepalive returns a keepalive function that prompts once for a touch.
// Each call makes a new one; checks get one per check, which is close
// enough to one per request for a prompt.
func (c *chipRun) keepalive() func(ctap2.KeepaliveStatus) {
	var once sync.Once
	return func(s ctap2.KeepaliveStatus) {
		if s == ctap2.StatusUPNeeded {
			once.Do(func() { c.o.TouchNeeded(c.Name()) })
		}
	}
}

func (c *chipRun) random(n int) []byte {
	b := make([]byte, n)
	if c.o.Rand != nil {
		if _, err := io.ReadFull(c.o.Rand, b); err == nil {
			return b
		}
	}
	rand.Read(b)
	return b
}

// info returns the chip's getInfo answer, asked once per suite run.
func (c *chipRun) info(ctx context.Context) (*ctap2.Info, error) {
	v, err := c.Memo("info", func() (any, error) {
		info, err := c.chip.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("getInfo failed: %w", err)
		}
		return info, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*ctap2.Info), nil
}

// credential is a credential a check made, with what it was made from.
type credential struct {
	rpID           string
	clientDataHash []byte
	att            *ctap2.Attestation
	authData       *ctap2.AuthData
	id             []byte
	pub            []byte // COSE_Key
}

// makeCredential makes a credential and parses its authenticator data.
func (c *chipRun) makeCredential(ctx context.Context, req *ctap2.MakeCredentialRequest) (*credential, error) {
	att, err := c.chip.MakeCredential(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("makeCredential failed: %w", err)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		return nil, fmt.Errorf("makeCredential returned authenticator data that does not parse: %w", err)
	}
	if ad.AttestedCredential == nil {
		return nil, fmt.Errorf("makeCredential returned authenticator data without attested credential data (flags 0x%02X)", ad.Flags)
	}
	return &credential{
		rpID:           req.RP.ID,
		clientDataHash: req.ClientDataHash,
		att:            att,
		authData:       ad,
		id:             ad.AttestedCredential.CredentialID,
		pub:            ad.AttestedCredential.PublicKey,
	}, nil
}

func (c *chipRun) newRequest(rpID string, userID []byte, resident bool) *ctap2.MakeCredentialRequest {
	req := &ctap2.MakeCredentialRequest{
		ClientDataHash:   c.random(ctap2.ClientDataHashSize),
		RP:               ctap2.RPEntity{ID: rpID, Name: "authbench conformance"},
		User:             ctap2.UserEntity{ID: userID, Name: "conformance", DisplayName: "authbench conformance check"},
		PubKeyCredParams: []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}},
	}
	if req.User.ID == nil {
		req.User.ID = c.random(16)
	}
	if resident {
		req.Options = map[string]bool{"rk": true}
	}
	return req
}

// fixture returns the suite's shared non-resident ES256 credential, made
// once per suite run.
func (c *chipRun) fixture(ctx context.Context) (*credential, error) {
	v, err := c.Memo("credential", func() (any, error) {
		cred, err := c.makeCredential(ctx, c.newRequest(c.o.RPID, nil, false))
		if err != nil {
			return nil, err
		}
		c.Logf("made credential %x for %q (format %q, signCount %d)", cred.id, cred.rpID, cred.att.Format, cred.authData.SignCount)
		return cred, nil
	})
	if err != nil {
		return nil, fmt.Errorf("needs the shared credential, which could not be made: %w", err)
	}
	return v.(*credential), nil
}

// assert gets an assertion for cred and checks its signature and rpIdHash.
func (c *chipRun) assert(ctx context.Context, cred *credential) (*ctap2.Assertion, *ctap2.AuthData, error) {
	cdh := c.random(ctap2.ClientDataHashSize)
	a, err := c.chip.GetAssertion(ctx, &ctap2.GetAssertionRequest{
		RPID:           cred.rpID,
		ClientDataHash: cdh,
		AllowList:      []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: cred.id}},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("getAssertion failed: %w", err)
	}
	ad, err := c.checkAssertion(a, cred, cdh)
	return a, ad, err
}

// checkAssertion checks an assertion made with cred over cdh.
func (c *chipRun) checkAssertion(a *ctap2.Assertion, cred *credential, cdh []byte) (*ctap2.AuthData, error) {
	ad, err := ctap2.ParseAuthData(a.AuthData)
	if err != nil {
		return nil, fmt.Errorf("assertion authenticator data does not parse: %w", err)
	}
	var problems []string
	if a.Credential != nil && !bytes.Equal(a.Credential.ID, cred.id) {
		problems = append(problems, fmt.Sprintf("assertion names credential %x, want %x", a.Credential.ID, cred.id))
	}
	if want := ctap2.RPIDHash(cred.rpID); ad.RPIDHash != want {
		problems = append(problems, fmt.Sprintf("assertion rpIdHash is %x, want SHA-256(%q) = %x", ad.RPIDHash, cred.rpID, want))
	}
	if ad.Flags&ctap2.FlagUP == 0 {
		problems = append(problems, fmt.Sprintf("assertion flags 0x%02X lack UP although presence was asked for", ad.Flags))
	}
	if ad.AttestedCredential != nil {
		problems = append(problems, "assertion authenticator data carries attested credential data (AT set)")
	}
	if err := ctap2.VerifyAssertion(cred.pub, a.AuthData, cdh, a.Signature); err != nil {
		problems = append(problems, fmt.Sprintf("assertion signature does not verify with the credential's public key: %v", err))
	}
	if len(problems) > 0 {
		return ad, errors.New(strings.Join(problems, "; "))
	}
	return ad, nil
}

// rawMessenger returns the target's raw CTAP2 ability, or nil.
func (c *chipRun) rawMessenger() ctap2.Messenger { return rawCTAP2(c.Target) }

// rawCTAP2 returns a messenger that carries CTAP2 requests to the target
// as they are, or nil.
func rawCTAP2(target any) ctap2.Messenger {
	switch t := target.(type) {
	case ctap2.Messenger:
		return t
	case ctap2Server:
		return serverMessenger{t}
	}
	return nil
}

type serverMessenger struct{ s ctap2Server }

func (m serverMessenger) CBOR(ctx context.Context, req []byte) ([]byte, error) {
	return m.s.ServeCTAP2(ctx, req), nil
}

var errNoRaw = &SkipError{Reason: "the target offers no raw CTAP2 messages (a ctap2.Messenger such as MessengerChip, or a ServeCTAP2 method); the typed client cannot send this malformed request"}

// raw sends command cmd with params (any CBOR-encodable value, not
// validated) and returns the status byte and the body of the answer.
func (c *chipRun) raw(ctx context.Context, cmd byte, params any) (byte, []byte, error) {
	m := c.rawMessenger()
	if m == nil {
		return 0, nil, errNoRaw
	}
	req := []byte{cmd}
	if params != nil {
		b, err := ctap2.Marshal(params)
		if err != nil {
			return 0, nil, fmt.Errorf("encoding the request: %w", err)
		}
		req = append(req, b...)
	}
	resp, err := m.CBOR(ctx, req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", ctap2.CommandName(cmd), err)
	}
	if len(resp) == 0 {
		return 0, nil, fmt.Errorf("%s: the chip answered nothing, not even a status byte", ctap2.CommandName(cmd))
	}
	return resp[0], resp[1:], nil
}

// statusText names a CTAP2 status for a report: "CTAP2_ERR_NO_CREDENTIALS (0x2E)".
func statusText(code byte) string {
	return fmt.Sprintf("%s (0x%02X)", ctap2.StatusName(code), code)
}

// expectStatus checks that err is the CTAP2 status want.
func expectStatus(what string, err error, want byte) error {
	if err == nil {
		return fmt.Errorf("%s succeeded, want %s", what, statusText(want))
	}
	if errors.Is(err, &ctap2.StatusError{Code: want}) {
		return nil
	}
	return fmt.Errorf("%s answered %v, want %s", what, err, statusText(want))
}

func checkInfoFields(ctx context.Context, c *chipRun) error {
	info, err := c.info(ctx)
	if err != nil {
		return err
	}
	c.Logf("versions %v, AAGUID %x, options %v, algorithms %v, maxMsgSize %d, transports %v",
		info.Versions, info.AAGUID, info.Options, info.Algorithms, info.MaxMsgSize, info.Transports)
	var problems []string
	if !slices.Contains(info.Versions, "FIDO_2_0") {
		problems = append(problems, fmt.Sprintf("versions %q lack FIDO_2_0", info.Versions))
	}
	if len(info.AAGUID) != ctap2.AAGUIDSize {
		problems = append(problems, fmt.Sprintf("AAGUID has %d bytes, want %d", len(info.AAGUID), ctap2.AAGUIDSize))
	} else if bytes.Equal(info.AAGUID, make([]byte, ctap2.AAGUIDSize)) {
		c.Logf("the AAGUID is all zeros: the chip model cannot be identified")
	}
	if len(info.Algorithms) == 0 {
		c.Logf("no algorithms listed; CTAP 2.1 §6.4 then implies ES256")
	} else if !slices.Contains(info.Algorithms, ctap2.CredentialParameters{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}) {
		problems = append(problems, fmt.Sprintf("algorithms %v lack public-key ES256 (-7)", info.Algorithms))
	}
	if info.Options["plat"] {
		problems = append(problems, "option plat is true: a removable chip must not claim to be a platform authenticator")
	}
	if up, ok := info.Options["up"]; ok && !up {
		problems = append(problems, "option up is false: the chip says it cannot test user presence")
	}
	if info.MaxMsgSize != 0 && info.MaxMsgSize < 1024 {
		c.Logf("maxMsgSize %d is below the 1024 bytes hosts assume when it is absent", info.MaxMsgSize)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func checkInfoCanonical(ctx context.Context, c *chipRun) error {
	st, body, err := c.raw(ctx, ctap2.CmdGetInfo, nil)
	if err != nil {
		return err
	}
	if st != ctap2.CodeOK {
		return fmt.Errorf("getInfo answered %s", statusText(st))
	}
	if err := ctap2.CheckCanonical(body); err != nil {
		return fmt.Errorf("the getInfo answer is not canonical CTAP2 CBOR: %v", err)
	}
	info, err := ctap2.DecodeInfo(body)
	if err != nil {
		return fmt.Errorf("the getInfo answer does not decode: %v", err)
	}
	again, err := ctap2.EncodeInfo(info)
	if err != nil {
		return fmt.Errorf("the decoded getInfo answer does not re-encode: %v", err)
	}
	if bytes.Equal(again, body) {
		c.Logf("%d bytes, re-encoded identically", len(body))
		return nil
	}
	// Re-encoding drops keys this package does not know and optional
	// members sent with their zero value; neither is a fault.
	var orig, re map[uint64]cbor.RawMessage
	if err := ctap2.Unmarshal(body, &orig); err != nil {
		return fmt.Errorf("the getInfo answer is not a map with integer keys: %v", err)
	}
	if err := ctap2.Unmarshal(again, &re); err != nil {
		return fmt.Errorf("re-encoded getInfo does not decode: %v", err)
	}
	var problems []string
	for k, v := range orig {
		w, ok := re[k]
		switch {
		case !ok && (!knownInfoKey(k) || zeroCBOR(v)):
			c.Logf("key %d (%x) is not kept when re-encoding: unknown to this suite or a zero value", k, []byte(v))
		case !ok:
			problems = append(problems, fmt.Sprintf("key %d was lost when re-encoding", k))
		case !bytes.Equal(v, w):
			problems = append(problems, fmt.Sprintf("key %d is %x on the wire but re-encodes as %x", k, []byte(v), []byte(w)))
		}
	}
	for k := range re {
		if _, ok := orig[k]; !ok {
			problems = append(problems, fmt.Sprintf("key %d appears when re-encoding", k))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("re-encoding the getInfo answer changes it: %s", strings.Join(problems, "; "))
	}
	return nil
}

// zeroCBOR reports whether b is the encoding of false, 0, or an empty
// string, array or map.
func zeroCBOR(b []byte) bool {
	return len(b) == 1 && (b[0] == 0xF4 || b[0] == 0x00 || b[0] == 0x40 || b[0] == 0x60 || b[0] == 0x80 || b[0] == 0xA0)
}

// knownInfoKey reports whether ctap2.Info has a member for getInfo key k.
func knownInfoKey(k uint64) bool { return k >= 1 && k <= 21 }

func checkMakeCredentialAuthData(ctx context.Context, c *chipRun) error {
	cred, err := c.fixture(ctx)
	if err != nil {
		return err
	}
	ad := cred.authData
	var problems []string
	if want := ctap2.RPIDHash(cred.rpID); ad.RPIDHash != want {
		problems = append(problems, fmt.Sprintf("rpIdHash is %x, want SHA-256(%q) = %x", ad.RPIDHash, cred.rpID, want))
	}
	if ad.Flags&ctap2.FlagUP == 0 {
		problems = append(problems, fmt.Sprintf("flags 0x%02X lack UP (user present)", ad.Flags))
	}
	if ad.Flags&ctap2.FlagAT == 0 {
		problems = append(problems, fmt.Sprintf("flags 0x%02X lack AT (attested credential data)", ad.Flags))
	}
	if info, err := c.info(ctx); err == nil {
		if !bytes.Equal(ad.AttestedCredential.AAGUID[:], info.AAGUID) {
			problems = append(problems, fmt.Sprintf("AAGUID %x differs from getInfo's %x", ad.AttestedCredential.AAGUID, info.AAGUID))
		}
		if n := info.MaxCredentialIDLength; n != 0 && uint64(len(cred.id)) > n {
			problems = append(problems, fmt.Sprintf("credential ID of %d bytes exceeds maxCredentialIdLength %d", len(cred.id), n))
		}
	}
	if _, err := ctap2.ParsePublicKey(cred.pub); err != nil {
		problems = append(problems, fmt.Sprintf("credential public key does not parse as a COSE ES256 key: %v", err))
	}
	c.Logf("flags 0x%02X, signCount %d, credential ID of %d bytes", ad.Flags, ad.SignCount, len(cred.id))
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func checkAssertionSignature(ctx context.Context, c *chipRun) error {
	cred, err := c.fixture(ctx)
	if err != nil {
		return err
	}
	_, ad, err := c.assert(ctx, cred)
	if err != nil {
		return err
	}
	c.Logf("flags 0x%02X, signCount %d", ad.Flags, ad.SignCount)
	return nil
}

func checkCounter(ctx context.Context, c *chipRun) error {
	cred, err := c.fixture(ctx)
	if err != nil {
		return err
	}
	_, ad1, err := c.assert(ctx, cred)
	if err != nil {
		return fmt.Errorf("first assertion: %w", err)
	}
	_, ad2, err := c.assert(ctx, cred)
	if err != nil {
		return fmt.Errorf("second assertion: %w", err)
	}
	c0, c1, c2 := cred.authData.SignCount, ad1.SignCount, ad2.SignCount
	c.Logf("signCount %d at registration, then %d and %d", c0, c1, c2)
	if c1 == 0 && c2 == 0 {
		c.Logf("the chip keeps no signature counter (always 0), which WebAuthn allows")
		return nil
	}
	if c2 <= c1 {
		return fmt.Errorf("sign counter did not increase: %d then %d", c1, c2)
	}
	if c0 != 0 && c1 <= c0 {
		return fmt.Errorf("sign counter of the first assertion (%d) is not above the one at registration (%d)", c1, c0)
	}
	return nil
}

func checkUnknownCredential(ctx context.Context, c *chipRun) error {
	_, err := c.chip.GetAssertion(ctx, &ctap2.GetAssertionRequest{
		RPID:           c.o.RPID,
		ClientDataHash: c.random(ctap2.ClientDataHashSize),
		AllowList:      []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: c.random(32)}},
	})
	return expectStatus("getAssertion for a made-up credential ID", err, ctap2.CodeNoCredentials)
}

func checkExcludeList(ctx context.Context, c *chipRun) error {
	cred, err := c.fixture(ctx)
	if err != nil {
		return err
	}
	req := c.newRequest(cred.rpID, nil, false)
	req.ExcludeList = []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: cred.id}}
	att, err := c.chip.MakeCredential(ctx, req)
	if err == nil {
		if ad, perr := ctap2.ParseAuthData(att.AuthData); perr == nil && ad.AttestedCredential != nil {
			return fmt.Errorf("the chip made a new credential (%x) although the excludeList named one it holds for %q; want CTAP2_ERR_CREDENTIAL_EXCLUDED (0x19)",
				ad.AttestedCredential.CredentialID, cred.rpID)
		}
	}
	return expectStatus("makeCredential with the chip's own credential in the excludeList", err, ctap2.CodeCredentialExcluded)
}

func checkUnsupportedAlgorithm(ctx context.Context, c *chipRun) error {
	alg := int64(-65535) // RS1 (COSE): no FIDO chip should offer it
	if info, err := c.info(ctx); err == nil {
		for _, cand := range []int64{-65535, -260, -259, -47, -39} {
			if !slices.Contains(info.Algorithms, ctap2.CredentialParameters{Type: ctap2.CredentialTypePublicKey, Alg: cand}) {
				alg = cand
				break
			}
		}
	}
	req := c.newRequest(c.o.RPID, nil, false)
	req.PubKeyCredParams = []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: alg}}
	_, err := c.chip.MakeCredential(ctx, req)
	return expectStatus(fmt.Sprintf("makeCredential offering only algorithm %d", alg), err, ctap2.CodeUnsupportedAlgorithm)
}

func checkLongMessage(ctx context.Context, c *chipRun) error {
	cred, err := c.fixture(ctx)
	if err != nil {
		return err
	}
	maxMsg, count, idLen := 1024, 16, 64
	if info, err := c.info(ctx); err == nil {
		if info.MaxMsgSize != 0 {
			maxMsg = int(min(info.MaxMsgSize, 7609))
		}
		if info.MaxCredentialCountInList != 0 {
			count = int(min(info.MaxCredentialCountInList, 64))
		}
		if info.MaxCredentialIDLength != 0 {
			idLen = int(min(info.MaxCredentialIDLength, 128))
		}
	}
	req := c.newRequest(cred.rpID, nil, false)
	for range count - 1 {
		req.ExcludeList = append(req.ExcludeList, ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: c.random(idLen)})
	}
	// The chip's own credential goes last: only a chip that received the
	// whole message sees it.
	req.ExcludeList = append(req.ExcludeList, ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: cred.id})
	target := maxMsg - 32
	size, err := requestSize(req)
	if err != nil {
		return err
	}
	if pad := target - size - 6; pad > 0 {
		// Long names: WebAuthn lets a chip truncate them, not refuse them.
		req.User.Name = strings.Repeat("n", pad/2)
		req.User.DisplayName = strings.Repeat("d", pad-pad/2)
	}
	if size, err = requestSize(req); err != nil {
		return err
	}
	packets := 1
	if size > 57 {
		packets += (size - 57 + 58) / 59
	}
	c.Logf("a %d-byte makeCredential (maxMsgSize %d): %d CTAPHID packets, %d short APDU pieces; %d excludeList entries", size, maxMsg, packets, (size+249)/250, len(req.ExcludeList))
	if size <= 255 {
		c.Logf("the request fits one short APDU: the chip's limits leave no room for a long message")
	}
	_, err = c.chip.MakeCredential(ctx, req)
	if err == nil {
		return fmt.Errorf("the chip made a new credential although the last excludeList entry of the %d-byte request names one it holds: the message was cut short, or the excludeList ignored", size)
	}
	return expectStatus(fmt.Sprintf("the %d-byte makeCredential", size), err, ctap2.CodeCredentialExcluded)
}

// requestSize returns the encoded size of a makeCredential request,
// command byte included.
func requestSize(req *ctap2.MakeCredentialRequest) (int, error) {
	b, err := ctap2.EncodeRequest(ctap2.CmdMakeCredential, req)
	if err != nil {
		return 0, fmt.Errorf("encoding the request: %w", err)
	}
	return len(b), nil
}

// rawMakeCredential returns the parameters of a well-formed makeCredential
// as a generic map, for checks to spoil.
func (c *chipRun) rawMakeCredential() map[int]any {
	return map[int]any{
		1: c.random(ctap2.ClientDataHashSize),
		2: map[string]any{"id": c.o.RPID, "name": "authbench conformance"},
		3: map[string]any{"id": c.random(16), "name": "conformance", "displayName": "authbench conformance check"},
		4: []any{map[string]any{"type": ctap2.CredentialTypePublicKey, "alg": ctap2.AlgES256}},
	}
}

func checkBadHashLength(ctx context.Context, c *chipRun) error {
	p := c.rawMakeCredential()
	p[1] = c.random(ctap2.ClientDataHashSize - 1)
	st, _, err := c.raw(ctx, ctap2.CmdMakeCredential, p)
	if err != nil {
		return err
	}
	c.Logf("answered %s", statusText(st))
	switch st {
	case ctap2.CodeOK:
		return errors.New("the chip accepted a 31-byte clientDataHash and made a credential")
	case ctap2.CodeInvalidParameter, ctap2.CodeInvalidLength, ctap2.CodeCBORUnexpectedType, ctap2.CodeInvalidCBOR:
		return nil
	}
	return fmt.Errorf("makeCredential with a 31-byte clientDataHash answered %s, want a parameter error such as %s", statusText(st), statusText(ctap2.CodeInvalidLength))
}

func checkMissingParameter(ctx context.Context, c *chipRun) error {
	p := c.rawMakeCredential()
	delete(p, 1)
	st, _, err := c.raw(ctx, ctap2.CmdMakeCredential, p)
	if err != nil {
		return err
	}
	if st != ctap2.CodeMissingParameter {
		return fmt.Errorf("makeCredential without clientDataHash answered %s, want %s", statusText(st), statusText(ctap2.CodeMissingParameter))
	}
	return nil
}

func checkWrongType(ctx context.Context, c *chipRun) error {
	p := c.rawMakeCredential()
	p[2] = c.o.RPID
	st, _, err := c.raw(ctx, ctap2.CmdMakeCredential, p)
	if err != nil {
		return err
	}
	if st != ctap2.CodeCBORUnexpectedType {
		return fmt.Errorf("makeCredential whose rp is a text string answered %s, want %s", statusText(st), statusText(ctap2.CodeCBORUnexpectedType))
	}
	return nil
}

// unassignedCommand is a command byte CTAP 2.1 §6 reserves and no
// authenticator implements.
const unassignedCommand = 0x3F

func checkInvalidCommand(ctx context.Context, c *chipRun) error {
	st, _, err := c.raw(ctx, unassignedCommand, nil)
	if err != nil {
		return err
	}
	if st != ctap2.CodeInvalidCommand {
		return fmt.Errorf("command 0x%02X answered %s, want %s", unassignedCommand, statusText(st), statusText(ctap2.CodeInvalidCommand))
	}
	return nil
}

func checkNextWithoutAssertion(ctx context.Context, c *chipRun) error {
	n, ok := c.Target.(device.NextAssertioner)
	if !ok {
		return Skipf("the target does not offer getNextAssertion (device.NextAssertioner)")
	}
	// Any other command drops the state of a previous getAssertion.
	if _, err := c.chip.Info(ctx); err != nil {
		return fmt.Errorf("getInfo failed: %w", err)
	}
	_, err := n.GetNextAssertion(ctx)
	return expectStatus("getNextAssertion right after getInfo", err, ctap2.CodeNotAllowed)
}

// residentUser returns a fixed user ID, so that repeated runs replace the
// credentials of earlier ones instead of filling the chip.
func residentUser(name string) []byte {
	h := sha256.Sum256([]byte("authbench conformance user " + name))
	return h[:16]
}

func (c *chipRun) needRK(ctx context.Context) error {
	info, err := c.info(ctx)
	if err != nil {
		return err
	}
	if !info.Options["rk"] {
		return Skipf("the chip does not offer resident credentials (getInfo option rk is %v)", info.Options["rk"])
	}
	return nil
}

func checkResidentReplace(ctx context.Context, c *chipRun) error {
	if err := c.needRK(ctx); err != nil {
		return err
	}
	rpID := "resident." + c.o.RPID
	user := residentUser("replace")
	first := c.newRequest(rpID, user, true)
	first.User.Name = "first"
	old, err := c.makeCredential(ctx, first)
	if err != nil {
		return fmt.Errorf("first resident credential: %w", err)
	}
	second := c.newRequest(rpID, user, true)
	second.User.Name = "second"
	cur, err := c.makeCredential(ctx, second)
	if err != nil {
		return fmt.Errorf("second resident credential: %w", err)
	}
	if bytes.Equal(old.id, cur.id) {
		return fmt.Errorf("both makeCredential calls returned credential ID %x", cur.id)
	}
	cdh := c.random(ctap2.ClientDataHashSize)
	a, err := c.chip.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: rpID, ClientDataHash: cdh})
	if err != nil {
		return fmt.Errorf("getAssertion without allowList failed: %w", err)
	}
	var problems []string
	if a.NumberOfCredentials > 1 {
		problems = append(problems, fmt.Sprintf("the chip kept %d credentials for the same RP and user ID", a.NumberOfCredentials))
	}
	if a.Credential == nil {
		return errors.New("the assertion of a resident credential does not name its credential")
	}
	if bytes.Equal(a.Credential.ID, old.id) {
		problems = append(problems, "getAssertion returned the replaced credential")
	} else if !bytes.Equal(a.Credential.ID, cur.id) {
		problems = append(problems, fmt.Sprintf("getAssertion returned credential %x, want the new one %x", a.Credential.ID, cur.id))
	}
	if a.User == nil || !bytes.Equal(a.User.ID, user) {
		problems = append(problems, fmt.Sprintf("the assertion's user is %v, want ID %x", a.User, user))
	}
	if len(problems) == 0 {
		if _, err := c.checkAssertion(a, cur, cdh); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func checkNextAssertion(ctx context.Context, c *chipRun) error {
	n, ok := c.Target.(device.NextAssertioner)
	if !ok {
		return Skipf("the target does not offer getNextAssertion (device.NextAssertioner)")
	}
	if err := c.needRK(ctx); err != nil {
		return err
	}
	rpID := "multi." + c.o.RPID
	var creds []*credential
	for _, name := range []string{"older", "newer"} {
		req := c.newRequest(rpID, residentUser(name), true)
		req.User.Name = name
		cred, err := c.makeCredential(ctx, req)
		if err != nil {
			return fmt.Errorf("resident credential %q: %w", name, err)
		}
		creds = append(creds, cred)
	}
	cdh := c.random(ctap2.ClientDataHashSize)
	a, err := c.chip.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: rpID, ClientDataHash: cdh})
	if err != nil {
		return fmt.Errorf("getAssertion without allowList failed: %w", err)
	}
	if a.NumberOfCredentials != 2 {
		return fmt.Errorf("getAssertion reports numberOfCredentials %d for an RP with 2 resident credentials", a.NumberOfCredentials)
	}
	if a.Credential == nil || !bytes.Equal(a.Credential.ID, creds[1].id) {
		return fmt.Errorf("the first assertion is not of the newest credential %x (got %v)", creds[1].id, a.Credential)
	}
	if _, err := c.checkAssertion(a, creds[1], cdh); err != nil {
		return fmt.Errorf("first assertion: %w", err)
	}
	b, err := n.GetNextAssertion(ctx)
	if err != nil {
		return fmt.Errorf("getNextAssertion failed: %w", err)
	}
	if b.Credential == nil || !bytes.Equal(b.Credential.ID, creds[0].id) {
		return fmt.Errorf("getNextAssertion is not of the older credential %x (got %v)", creds[0].id, b.Credential)
	}
	if _, err := c.checkAssertion(b, creds[0], cdh); err != nil {
		return fmt.Errorf("getNextAssertion: %w", err)
	}
	_, err = n.GetNextAssertion(ctx)
	return expectStatus("a third getNextAssertion for 2 credentials", err, ctap2.CodeNotAllowed)
}

// cancelFallback is how long the cancel check waits for a keepalive before
// it cancels anyway (a target that reports none).
const cancelFallback = 3 * time.Second

// cancelGrace bounds how long a cancelled request may take to return.
const cancelGrace = 10 * time.Second

func checkCancel(ctx context.Context, c *chipRun) error {
	if c.o.WithholdPresence == nil {
		return Skipf("needs the touch withheld while a request waits: run with --operator (someone at the bench keeps off the chip when told), or check the in-process simulator (--device sim:chip)")
	}
	c.o.WithholdPresence(true)
	held := true
	release := func() {
		if held {
			held = false
			c.o.WithholdPresence(false)
		}
	}
	defer release()

	waiting := make(chan struct{})
	var once sync.Once
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rctx = ctap2.WithKeepalive(rctx, func(s ctap2.KeepaliveStatus) {
		if s == ctap2.StatusUPNeeded {
			once.Do(func() { close(waiting) })
		}
	})
	type result struct {
		att *ctap2.Attestation
		err error
	}
	done := make(chan result, 1)
	req := c.newRequest("cancel."+c.o.RPID, nil, false)
	go func() {
		att, err := c.chip.MakeCredential(rctx, req)
		done <- result{att, err}
	}()
	fallback := time.NewTimer(cancelFallback)
	defer fallback.Stop()
	select {
	case <-waiting:
		c.Logf("the chip reported that it waits for a touch; cancelling")
	case <-fallback.C:
		c.Logf("no UPNEEDED keepalive within %v; cancelling anyway", cancelFallback)
	case res := <-done:
		if res.err == nil {
			return errors.New("the chip made a credential while the touch was withheld: it does not wait for user presence")
		}
		return fmt.Errorf("makeCredential ended before the host cancelled: %v", res.err)
	case <-ctx.Done():
		return ctx.Err()
	}
	cancel()
	guard := time.NewTimer(cancelGrace)
	defer guard.Stop()
	var res result
	select {
	case res = <-done:
	case <-guard.C:
		return fmt.Errorf("makeCredential did not return within %v after the host cancelled it", cancelGrace)
	}
	release()
	switch {
	case res.err == nil:
		return errors.New("the chip made a credential although the host cancelled the request and no touch came")
	case errors.Is(res.err, ctap2.ErrKeepaliveCancel):
		c.Logf("answered %v", res.err)
	case errors.Is(res.err, context.Canceled):
		c.Logf("the transport returned when the host cancelled: %v", res.err)
	default:
		return fmt.Errorf("after the host cancelled, makeCredential answered %v, want %s", res.err, statusText(ctap2.CodeKeepaliveCancel))
	}
	if _, err := c.chip.Info(ctx); err != nil {
		return fmt.Errorf("the chip does not answer getInfo after the cancel: %w", err)
	}
	return nil
}

// u2fClient returns the target's U2F ability, or nil.
func (c *chipRun) u2fClient() U2FClient {
	if t, ok := c.Target.(U2FClient); ok {
		return t
	}
	if cl := c.u2f(); cl != nil {
		return cl
	}
	return nil
}

// u2f returns a U2F client of the target, or nil.
func (c *chipRun) u2f() *u2f.Client {
	if t, ok := c.chip.(*u2f.Chip); ok {
		return t.U2F()
	}
	return u2fClientOf(c.Target)
}

// u2fClientOf returns a U2F client over what target offers: its own (a
// U2F() method), a u2f.Messenger, a device-side ServeU2F, or a
// u2f.Authenticator behind a Handler. It returns nil when there is none.
func u2fClientOf(target any) *u2f.Client {
	if t, ok := target.(u2fProvider); ok {
		if cl := t.U2F(); cl != nil {
			return cl
		}
	}
	if m := rawU2F(target); m != nil {
		return u2f.NewClient(m, nil)
	}
	if t, ok := target.(u2f.Authenticator); ok {
		return u2f.NewClient(apduFunc(u2f.NewHandler(t).ServeU2F), nil)
	}
	return nil
}

// rawU2F returns a messenger that carries U2F request APDUs to the target
// as they are, or nil.
func rawU2F(target any) u2f.Messenger {
	switch t := target.(type) {
	case u2f.Messenger:
		return t
	case u2fServer:
		return apduFunc(t.ServeU2F)
	}
	return nil
}

type apduFunc func(ctx context.Context, req []byte) []byte

func (f apduFunc) APDU(ctx context.Context, req []byte) ([]byte, error) { return f(ctx, req), nil }

func checkU2F(ctx context.Context, c *chipRun) error {
	cl := c.u2fClient()
	if cl == nil {
		return Skipf("the target offers no U2F messages (U2FClient, u2f.Messenger or u2f.Authenticator)")
	}
	f, err := c.u2fFixture(ctx)
	if err != nil {
		return err
	}
	cert, err := f.reg.Verify(f.app, f.challenge)
	if err != nil {
		return fmt.Errorf("U2F registration does not verify: %w", err)
	}
	pub, err := f.reg.Key()
	if err != nil {
		return fmt.Errorf("U2F credential key: %w", err)
	}
	if err := c.u2fCertificate(cert, pub); err != nil {
		return fmt.Errorf("U2F attestation certificate: %w", err)
	}
	var counters []uint32
	var challenge [32]byte
	for i := range 2 {
		copy(challenge[:], c.random(32))
		resp, err := cl.Authenticate(ctx, u2f.ControlEnforcePresence, challenge, f.app, f.reg.KeyHandle)
		if err != nil {
			return fmt.Errorf("U2F authenticate %d failed: %w", i+1, err)
		}
		if !resp.UserPresent() {
			return fmt.Errorf("U2F authenticate %d: user presence bit clear although presence was enforced", i+1)
		}
		if err := resp.Verify(pub, f.app, challenge); err != nil {
			return fmt.Errorf("U2F authenticate %d: %w", i+1, err)
		}
		counters = append(counters, resp.Counter)
	}
	c.Logf("key handle of %d bytes; counters %d then %d", len(f.reg.KeyHandle), counters[0], counters[1])
	if counters[1] <= counters[0] && counters[1] != 0 {
		return fmt.Errorf("U2F counter did not increase: %d then %d", counters[0], counters[1])
	}
	return nil
}

func checkSelection(ctx context.Context, c *chipRun) error {
	s, ok := c.Target.(device.Selector)
	if !ok {
		return Skipf("the target does not offer authenticatorSelection (device.Selector)")
	}
	err := s.Selection(ctx)
	if errors.Is(err, ctap2.ErrInvalidCommand) {
		return Skipf("the chip does not implement authenticatorSelection (a CTAP 2.1 command): %v", err)
	}
	if err != nil {
		return fmt.Errorf("selection failed: %w", err)
	}
	return nil
}

func checkReset(ctx context.Context, c *chipRun) error {
	if !c.o.Destructive {
		return Skipf("destructive: erases every credential on the chip; run with --destructive to include it")
	}
	r, ok := c.Target.(device.Resetter)
	if !ok {
		return Skipf("the target does not offer authenticatorReset (device.Resetter)")
	}
	cred, err := c.fixture(ctx)
	if err != nil {
		return err
	}
	if err := r.Reset(ctx); err != nil {
		if errors.Is(err, ctap2.ErrNotAllowed) {
			return fmt.Errorf("reset refused (%v): chips accept it only within 10 s of power-up; replug the chip and run again", err)
		}
		return fmt.Errorf("reset failed: %w", err)
	}
	_, err = c.chip.GetAssertion(ctx, &ctap2.GetAssertionRequest{
		RPID:           cred.rpID,
		ClientDataHash: c.random(ctap2.ClientDataHashSize),
		AllowList:      []ctap2.CredentialDescriptor{{Type: ctap2.CredentialTypePublicKey, ID: cred.id}},
	})
	if err == nil {
		return errors.New("the credential made before the reset still signs after it")
	}
	return expectStatus("getAssertion for a credential made before the reset", err, ctap2.CodeNoCredentials)
}
