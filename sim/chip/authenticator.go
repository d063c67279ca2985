package chip

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

var p256 = elliptic.P256()

// Versions the chip reports in getInfo (CTAP 2.1 §6.4).
var versions = []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1"}

// errNoCTAP2 is a U2F-only chip's answer to any CTAP2 command: it does not
// know the command (CTAP1_ERR_INVALID_COMMAND; its transports refuse CTAP2
// before it gets that far).
var errNoCTAP2 = fmt.Errorf("chip: a U2F-only chip speaks no CTAP2: %w", ctap2.ErrInvalidCommand)

// ctap2Begin starts a CTAP2 command: as begin, and errNoCTAP2 for a
// U2F-only chip.
func (c *Chip) ctap2Begin() error {
	if err := c.begin(); err != nil {
		return err
	}
	if !c.opts.Profile.Protocols().Has(device.ProtocolCTAP2) {
		return errNoCTAP2
	}
	return nil
}

// Info answers authenticatorGetInfo (CTAP 2.1 §6.4): versions U2F_V2 (not
// for ProfileCTAP2Only), FIDO_2_0 and FIDO_2_1; no extensions; the chip's
// AAGUID; options rk, up (true) and plat (false), and neither clientPin nor
// uv (a MitID chip has no PIN and no biometrics); maxMsgSize 1200; ES256
// only; transports nfc and usb.
//
// It returns an error wrapping device.ErrClosed after Close, and
// ctap2.ErrInvalidCommand for a U2F-only chip (as every CTAP2 method).
func (c *Chip) Info(ctx context.Context) (*ctap2.Info, error) {
	if err := c.ctap2Begin(); err != nil {
		return nil, err
	}
	vs := slices.Clone(versions)
	if !c.opts.Profile.Protocols().Has(device.ProtocolU2F) {
		vs = slices.DeleteFunc(vs, func(v string) bool { return v == u2f.Version })
	}
	aaguid := c.AAGUID()
	return &ctap2.Info{
		Versions:                 vs,
		AAGUID:                   aaguid[:],
		Options:                  map[string]bool{"rk": true, "up": true, "plat": false},
		MaxMsgSize:               maxMsgSize,
		MaxCredentialCountInList: maxCredsInList,
		MaxCredentialIDLength:    credentialIDLen,
		Transports:               []string{"nfc", "usb"},
		Algorithms:               []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}},
		FirmwareVersion:          firmwareVersion,
	}, nil
}

// checkPINUVAuth handles pinUvAuthParam for an authenticator that supports
// neither clientPin nor pinUvAuthToken, so that step 1 of CTAP 2.1 §6.1.2
// and §6.2.2 (the zero-length pinUvAuthParam that asks for a touch) does
// not apply to it, and step 2 does: a present pinUvAuthParam, even a
// zero-length one, is answered CTAP2_ERR_MISSING_PARAMETER when
// pinUvAuthProtocol is absent and CTAP1_ERR_INVALID_PARAMETER when it is
// present (no protocol is supported).
func checkPINUVAuth(param []byte, protocol *uint64) error {
	switch {
	case param == nil:
		return nil
	case protocol == nil:
		return fmt.Errorf("chip: pinUvAuthParam (%d bytes) without pinUvAuthProtocol: %w", len(param), ctap2.ErrMissingParameter)
	}
	return fmt.Errorf("chip: pinUvAuthProtocol %d not supported (no clientPin, no pinUvAuthToken): %w", *protocol, ctap2.ErrInvalidParameter)
}

// MakeCredential answers authenticatorMakeCredential (CTAP 2.1 §6.1.2).
// It creates a P-256 credential (ES256 is the only algorithm), resident when
// option "rk" is true, after a touch, and returns the attestation of
// Options.Attestation: "packed" with the batch or the chip's own
// certificate, "packed" self attestation, or "none".
//
// Errors (each a *ctap2.StatusError, matched by the ctap2 sentinels):
// ErrMissingParameter or ErrInvalidLength for malformed parameters;
// ErrInvalidParameter or ErrMissingParameter for a pinUvAuthParam;
// ErrUnsupportedAlgorithm without an ES256 public-key entry; ErrInvalidOption
// for "uv" true (no built-in user verification, §6.1.2 step 5) or "up"
// false; ErrCredentialExcluded, after a touch, when the excludeList names a
// credential of this chip for the RP; ErrOperationDenied when the user
// refuses; ErrKeepaliveCancel when ctx ends (also wrapping ctx's error);
// ErrKeyStoreFull when a resident credential does not fit. After Close the
// error wraps device.ErrClosed.
func (c *Chip) MakeCredential(ctx context.Context, req *ctap2.MakeCredentialRequest) (*ctap2.Attestation, error) {
	if err := c.ctap2Begin(); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if err := checkPINUVAuth(req.PINUVAuthParam, req.PINUVAuthProtocol); err != nil {
		return nil, err
	}
	es256 := false
	for _, p := range req.PubKeyCredParams {
		if p.Type == ctap2.CredentialTypePublicKey && p.Alg == ctap2.AlgES256 {
			es256 = true
			break
		}
	}
	if !es256 {
		return nil, fmt.Errorf("chip: no ES256 public-key entry in pubKeyCredParams: %w", ctap2.ErrUnsupportedAlgorithm)
	}
	if req.Options["uv"] {
		return nil, fmt.Errorf("chip: option uv: no built-in user verification: %w", ctap2.ErrInvalidOption)
	}
	if up, ok := req.Options["up"]; ok && !up {
		return nil, fmt.Errorf("chip: option up false in makeCredential: %w", ctap2.ErrInvalidOption)
	}
	resident := req.Options["rk"]
	rpIDHash := ctap2.RPIDHash(req.RP.ID)

	if !c.opts.Faults.IgnoreExcludeList && c.holdsAny(rpIDHash, req.ExcludeList) {
		// §6.1.2 step 12: wait for presence, then refuse whatever the
		// user did, so a web page cannot probe without the user noticing.
		if err := c.waitPresence(ctx, OpMakeCredential); err != nil && !isDenied(err) {
			return nil, err
		}
		return nil, fmt.Errorf("chip: excludeList names a credential of this chip: %w", ctap2.ErrCredentialExcluded)
	}
	if err := c.waitPresence(ctx, OpMakeCredential); err != nil {
		return nil, err
	}

	c.mu.Lock()
	cr, err := c.createLocked(req, rpIDHash, resident)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	signCount := cr.counter + c.opts.Faults.CounterOffset
	aaguid := c.st.aaguid
	c.mu.Unlock()

	ad := &ctap2.AuthData{
		RPIDHash:  c.reportedRPIDHash(rpIDHash),
		Flags:     ctap2.FlagUP | ctap2.FlagAT,
		SignCount: signCount,
		AttestedCredential: &ctap2.AttestedCredentialData{
			AAGUID:       aaguid,
			CredentialID: bytes.Clone(cr.id),
			PublicKey:    ctap2.EncodeES256PublicKey(&cr.key.PublicKey),
		},
	}
	authData, err := ad.Encode()
	if err != nil {
		return nil, fmt.Errorf("chip: %w", err)
	}
	switch c.opts.attestation() {
	case AttestationNone:
		return &ctap2.Attestation{Format: ctap2.FormatNone, AuthData: authData}, nil
	case AttestationSelf:
		// WebAuthn §8.2, self attestation: signed by the credential key,
		// no x5c.
		sig, err := c.sign(cr.key, authData, req.ClientDataHash)
		if err != nil {
			return nil, err
		}
		return &ctap2.Attestation{
			Format:    ctap2.FormatPacked,
			AuthData:  authData,
			Statement: ctap2.AttestationStatement{Alg: ctap2.AlgES256, Sig: sig},
		}, nil
	}
	sig, err := c.sign(c.attKey, authData, req.ClientDataHash)
	if err != nil {
		return nil, err
	}
	return &ctap2.Attestation{
		Format:   ctap2.FormatPacked,
		AuthData: authData,
		Statement: ctap2.AttestationStatement{
			Alg: ctap2.AlgES256,
			Sig: sig,
			X5C: [][]byte{bytes.Clone(c.attCert.Raw)},
		},
	}, nil
}

// holdsAny reports whether list names a credential of this chip bound to
// rpIDHash.
func (c *Chip) holdsAny(rpIDHash [32]byte, list []ctap2.CredentialDescriptor) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range list {
		if d.Type != ctap2.CredentialTypePublicKey {
			continue
		}
		if cr := c.st.credByID[string(d.ID)]; cr != nil && cr.rpIDHash == rpIDHash {
			return true
		}
	}
	return false
}

// createLocked makes and stores a credential (CTAP 2.1 §6.1.2 steps 15-16).
// A resident credential replaces the one for the same RP ID and user ID;
// otherwise it needs a free slot. c.mu is held.
func (c *Chip) createLocked(req *ctap2.MakeCredentialRequest, rpIDHash [32]byte, resident bool) (*credential, error) {
	if c.closed {
		return nil, errClosed
	}
	var old *credential
	if resident {
		for _, cr := range c.st.creds {
			if cr.resident && cr.rpIDHash == rpIDHash && bytes.Equal(cr.user.ID, req.User.ID) {
				old = cr
				break
			}
		}
		if old == nil && c.st.residentCount() >= c.st.slots {
			return nil, fmt.Errorf("chip: all %d resident slots in use: %w", c.st.slots, ctap2.ErrKeyStoreFull)
		}
	}
	cr, err := c.st.newCredential()
	if err != nil {
		return nil, err
	}
	cr.rpID = req.RP.ID
	cr.rpIDHash = rpIDHash
	cr.resident = resident
	if resident {
		cr.user = &ctap2.UserEntity{
			ID:          bytes.Clone(req.User.ID),
			Name:        req.User.Name,
			DisplayName: req.User.DisplayName,
		}
	}
	if old != nil {
		c.st.remove(old)
	}
	c.st.add(cr)
	if err := c.persistLocked(); err != nil {
		return nil, err
	}
	return cr, nil
}

// GetAssertion answers authenticatorGetAssertion (CTAP 2.1 §6.2.2). With an
// allowList it signs with the first listed credential the chip holds for
// the RP; without one it signs with the most recent resident credential of
// the RP and, when there are more, reports numberOfCredentials and keeps the
// rest for GetNextAssertion. It waits for a touch unless option "up" is
// false (then the UP flag is clear). Each credential's signature counter is
// incremented before it signs.
//
// Errors (each a *ctap2.StatusError): ErrMissingParameter or
// ErrInvalidLength for malformed parameters; ErrInvalidParameter or
// ErrMissingParameter for a pinUvAuthParam; ErrInvalidOption for "uv" true;
// ErrUnsupportedOption for "rk"; ErrNoCredentials when no credential fits;
// ErrOperationDenied when the user refuses; ErrKeepaliveCancel when ctx ends.
// After Close the error wraps device.ErrClosed.
func (c *Chip) GetAssertion(ctx context.Context, req *ctap2.GetAssertionRequest) (*ctap2.Assertion, error) {
	if err := c.ctap2Begin(); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if err := checkPINUVAuth(req.PINUVAuthParam, req.PINUVAuthProtocol); err != nil {
		return nil, err
	}
	if req.Options["uv"] {
		return nil, fmt.Errorf("chip: option uv: no built-in user verification: %w", ctap2.ErrInvalidOption)
	}
	if _, ok := req.Options["rk"]; ok {
		return nil, fmt.Errorf("chip: option rk in getAssertion: %w", ctap2.ErrUnsupportedOption)
	}
	up := true
	if v, ok := req.Options["up"]; ok {
		up = v
	}
	rpIDHash := ctap2.RPIDHash(req.RPID)
	ids := c.find(rpIDHash, req.AllowList)
	if len(ids) == 0 {
		return nil, fmt.Errorf("chip: no credential for %q: %w", req.RPID, ctap2.ErrNoCredentials)
	}
	if up {
		if err := c.waitPresence(ctx, OpGetAssertion); err != nil {
			return nil, err
		}
	}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed
	}
	cr := c.st.credByID[string(ids[0])]
	if cr == nil { // reset while waiting for the touch
		c.mu.Unlock()
		return nil, fmt.Errorf("chip: credential gone: %w", ctap2.ErrNoCredentials)
	}
	count, err := c.bumpLocked(cr)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	if len(ids) > 1 {
		c.next = &nextAssertions{
			ids:            ids,
			index:          1,
			clientDataHash: bytes.Clone(req.ClientDataHash),
			rpIDHash:       rpIDHash,
			up:             up,
			last:           c.now(),
		}
	}
	c.mu.Unlock()

	a, err := c.assertion(cr, rpIDHash, count, up, req.ClientDataHash)
	if err != nil {
		return nil, err
	}
	if len(ids) > 1 {
		a.NumberOfCredentials = uint64(len(ids))
	}
	return a, nil
}

// find returns the IDs of the credentials a getAssertion applies to (CTAP
// 2.1 §6.2.2 step 7): the first allowList entry the chip holds for the RP, or
// without an allowList every resident credential of the RP, newest first.
func (c *Chip) find(rpIDHash [32]byte, allow []ctap2.CredentialDescriptor) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(allow) > 0 {
		for _, d := range allow {
			if d.Type != ctap2.CredentialTypePublicKey {
				continue
			}
			if cr := c.st.credByID[string(d.ID)]; cr != nil && cr.rpIDHash == rpIDHash {
				return [][]byte{cr.id}
			}
		}
		return nil
	}
	var ids [][]byte
	for i := len(c.st.creds) - 1; i >= 0; i-- {
		if cr := c.st.creds[i]; cr.resident && cr.rpIDHash == rpIDHash {
			ids = append(ids, cr.id)
		}
	}
	return ids
}

// bumpLocked increments the signature counter of cr before an assertion and
// returns the value to report. c.mu is held.
func (c *Chip) bumpLocked(cr *credential) (uint32, error) {
	if !c.opts.Faults.CounterStuck || cr.counter == 0 {
		cr.counter++
	}
	if err := c.persistLocked(); err != nil {
		return 0, err
	}
	return cr.counter + c.opts.Faults.CounterOffset, nil
}

// assertion builds and signs the response for one credential.
func (c *Chip) assertion(cr *credential, rpIDHash [32]byte, count uint32, up bool, clientDataHash []byte) (*ctap2.Assertion, error) {
	var flags byte
	if up {
		flags |= ctap2.FlagUP
	}
	ad := &ctap2.AuthData{RPIDHash: c.reportedRPIDHash(rpIDHash), Flags: flags, SignCount: count}
	authData, err := ad.Encode()
	if err != nil {
		return nil, fmt.Errorf("chip: %w", err)
	}
	sig, err := c.sign(cr.key, authData, clientDataHash)
	if err != nil {
		return nil, err
	}
	a := &ctap2.Assertion{
		Credential: &ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: bytes.Clone(cr.id)},
		AuthData:   authData,
		Signature:  sig,
	}
	if cr.resident {
		// Without user verification only the user ID may leave the chip
		// (CTAP 2.1 §6.2.2, "user").
		a.User = &ctap2.UserEntity{ID: bytes.Clone(cr.user.ID)}
	}
	return a, nil
}

// GetNextAssertion answers authenticatorGetNextAssertion (CTAP 2.1 §6.3):
// the next credential found by the last GetAssertion, signed over the same
// client data hash, with no new touch. It returns an error wrapping
// ctap2.ErrNotAllowed when there is no such state, every credential was
// used, or more than 30 s passed since the previous assertion (any other
// command, and PowerCycle, drop the state), and device.ErrClosed after Close.
func (c *Chip) GetNextAssertion(ctx context.Context) (*ctap2.Assertion, error) {
	if !c.opts.Profile.Protocols().Has(device.ProtocolCTAP2) {
		return nil, errNoCTAP2
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errClosed
	}
	n := c.next
	now := c.now()
	if n == nil || n.index >= len(n.ids) || now.Sub(n.last) > NextAssertionWindow || now.Before(n.last) {
		c.next = nil
		c.mu.Unlock()
		return nil, fmt.Errorf("chip: no assertion to continue: %w", ctap2.ErrNotAllowed)
	}
	cr := c.st.credByID[string(n.ids[n.index])]
	n.index++
	n.last = now
	if cr == nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("chip: credential gone: %w", ctap2.ErrNotAllowed)
	}
	count, err := c.bumpLocked(cr)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return c.assertion(cr, n.rpIDHash, count, n.up, n.clientDataHash)
}

// Reset answers authenticatorReset (CTAP 2.1 §6.6): after a touch it
// deletes every credential, resident or not. The chip keeps its serial,
// AAGUID and attestation certificate, and never derives an old credential
// again. It returns an error wrapping ctap2.ErrNotAllowed when more than
// 10 s passed since power-up (New, Load or PowerCycle),
// ctap2.ErrOperationDenied when the user refuses, ctap2.ErrKeepaliveCancel
// when ctx ends, and device.ErrClosed after Close.
func (c *Chip) Reset(ctx context.Context) error {
	if err := c.ctap2Begin(); err != nil {
		return err
	}
	c.mu.Lock()
	since := c.now().Sub(c.poweredAt)
	c.mu.Unlock()
	if since > ResetWindow || since < 0 {
		return fmt.Errorf("chip: reset %v after power-up: %w", since, ctap2.ErrNotAllowed)
	}
	if err := c.waitPresence(ctx, OpReset); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	c.st.creds = nil
	c.st.credByID = map[string]*credential{}
	c.next = nil
	return c.persistLocked()
}

// Selection answers authenticatorSelection (CTAP 2.1 §6.9): it waits for a
// touch. It returns nil when touched, an error wrapping
// ctap2.ErrOperationDenied when the user refuses, ctap2.ErrKeepaliveCancel
// when ctx ends, and device.ErrClosed after Close.
func (c *Chip) Selection(ctx context.Context) error {
	if err := c.ctap2Begin(); err != nil {
		return err
	}
	return c.waitPresence(ctx, OpSelection)
}

// sign returns the DER ECDSA-SHA256 signature of the concatenated parts
// (WebAuthn §6.5.5), deterministic (RFC 6979) with
// Options.DeterministicSignatures. With Faults.BadSignature it signs
// other bytes.
func (c *Chip) sign(key *ecdsa.PrivateKey, parts ...[]byte) ([]byte, error) {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	if c.opts.Faults.BadSignature {
		h.Write([]byte("authbench: bad signature"))
	}
	var digest [sha256.Size]byte
	var (
		sig []byte
		err error
	)
	if c.opts.DeterministicSignatures {
		sig, err = key.Sign(nil, h.Sum(digest[:0]), crypto.SHA256)
	} else {
		sig, err = ecdsa.SignASN1(rand.Reader, key, h.Sum(digest[:0]))
	}
	if err != nil {
		return nil, fmt.Errorf("chip: sign: %w", err)
	}
	return sig, nil
}

// reportedRPIDHash is the RP ID hash the chip puts into what it signs: the
// right one unless Faults.WrongRPIDHash.
func (c *Chip) reportedRPIDHash(h [32]byte) [32]byte {
	if c.opts.Faults.WrongRPIDHash {
		return sha256.Sum256(append(h[:], "authbench: wrong RP"...))
	}
	return h
}
