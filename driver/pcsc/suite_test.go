package pcsc

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"slices"
	"testing"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
	"github.com/authbench/authbench/sim/chip"
)

// One suite, two targets: the functions below drive a Chip that holds a
// simulated chip, whether it is reached through the fake seam or through
// pcscd and vpcd.

const testRP = "login.authbench.test"

func es256() []ctap2.CredentialParameters {
	return []ctap2.CredentialParameters{{Type: ctap2.CredentialTypePublicKey, Alg: ctap2.AlgES256}}
}

// newSim makes a deterministic simulated chip, closed at cleanup.
func newSim(t testing.TB, name string) *chip.Chip {
	t.Helper()
	return newProfileSim(t, name, chip.ProfileFIDO2)
}

// newProfileSim is newSim for a chip of profile p.
func newProfileSim(t testing.TB, name string, p chip.Profile) *chip.Chip {
	t.Helper()
	c, err := chip.New(chip.Options{Seed: hash("pcsc test chip " + name), Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// foreignIDs returns n credential IDs of size bytes that no chip made.
func foreignIDs(n, size int) []ctap2.CredentialDescriptor {
	out := make([]ctap2.CredentialDescriptor, n)
	for i := range out {
		id := make([]byte, size)
		for j := range id {
			id[j] = byte(i*7 + j)
		}
		out[i] = ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: id}
	}
	return out
}

// bigMakeCredential is a makeCredential request of more than 3000 bytes
// (a long excludeList of foreign credentials), so that it needs chaining.
func bigMakeCredential(t testing.TB) *ctap2.MakeCredentialRequest {
	t.Helper()
	req := &ctap2.MakeCredentialRequest{
		ClientDataHash:   hash("registration"),
		RP:               ctap2.RPEntity{ID: testRP, Name: "authbench"},
		User:             ctap2.UserEntity{ID: []byte("user-1"), Name: "alice", DisplayName: "Alice"},
		PubKeyCredParams: es256(),
		ExcludeList:      foreignIDs(12, 240),
	}
	raw, err := ctap2.EncodeRequest(ctap2.CmdMakeCredential, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 3000 {
		t.Fatalf("request is %d bytes, want ≥ 3000", len(raw))
	}
	return req
}

// checkCTAP2 registers a credential (packed attestation: an answer of more
// than 256 bytes) with a request of more than 3000 bytes, then logs in
// three times and checks every signature and the sign counter.
func checkCTAP2(t *testing.T, ch *Chip) {
	t.Helper()
	ctx := testCtx(t)
	if ch.U2FOnly() {
		t.Fatal("CTAP2 chip reported as U2F-only")
	}
	info, err := ch.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if !slices.Contains(info.Versions, "FIDO_2_0") {
		t.Fatalf("versions = %v", info.Versions)
	}
	req := bigMakeCredential(t)
	att, err := ch.MakeCredential(ctx, req)
	if err != nil {
		t.Fatalf("MakeCredential: %v", err)
	}
	if att.Format != ctap2.FormatPacked || len(att.Statement.X5C) == 0 {
		t.Fatalf("attestation format %q with %d certificates", att.Format, len(att.Statement.X5C))
	}
	cert, err := x509.ParseCertificate(att.Statement.X5C[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := ctap2.VerifySignature(cert.PublicKey, att.AuthData, req.ClientDataHash, att.Statement.Sig); err != nil {
		t.Fatalf("attestation signature: %v", err)
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	if ad.RPIDHash != ctap2.RPIDHash(testRP) || ad.AttestedCredential == nil {
		t.Fatalf("authData %+v", ad)
	}
	cred := ad.AttestedCredential
	checkLogins(t, ch, cred.CredentialID, cred.PublicKey, 3)

	_, err = ch.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: testRP, ClientDataHash: hash("x"), AllowList: foreignIDs(2, 32)})
	if !errors.Is(err, ctap2.ErrNoCredentials) {
		t.Fatalf("GetAssertion with foreign credentials: %v, want ErrNoCredentials", err)
	}
	req.ExcludeList = append(req.ExcludeList, ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: cred.CredentialID})
	if _, err := ch.MakeCredential(ctx, req); !errors.Is(err, ctap2.ErrCredentialExcluded) {
		t.Fatalf("MakeCredential with own credential excluded: %v, want ErrCredentialExcluded", err)
	}
}

// checkLogins runs n getAssertions and checks signatures and counters.
func checkLogins(t *testing.T, ch *Chip, credID, coseKey []byte, n int) {
	t.Helper()
	ctx := testCtx(t)
	var last uint32
	for i := range n {
		cdh := hash("login " + string(rune('a'+i)))
		allow := append(foreignIDs(1, 40), ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: credID})
		as, err := ch.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: testRP, ClientDataHash: cdh, AllowList: allow})
		if err != nil {
			t.Fatalf("GetAssertion %d: %v", i, err)
		}
		if err := ctap2.VerifyAssertion(coseKey, as.AuthData, cdh, as.Signature); err != nil {
			t.Fatalf("assertion %d: %v", i, err)
		}
		ad, err := ctap2.ParseAuthData(as.AuthData)
		if err != nil {
			t.Fatal(err)
		}
		if ad.Flags&ctap2.FlagUP == 0 || (i > 0 && ad.SignCount <= last) {
			t.Fatalf("assertion %d: flags %02X, counter %d after %d", i, ad.Flags, ad.SignCount, last)
		}
		if as.Credential == nil || string(as.Credential.ID) != string(credID) {
			t.Fatalf("assertion %d names credential %+v", i, as.Credential)
		}
		last = ad.SignCount
	}
}

// checkU2FOnly drives a chip whose card speaks U2F only: the CTAP2 calls
// are translated to U2F (CTAP 2.1 §10) and the results must verify as
// WebAuthn data.
func checkU2FOnly(t *testing.T, ch *Chip) {
	t.Helper()
	ctx := testCtx(t)
	if !ch.U2FOnly() || ch.Version() != "U2F_V2" || ch.Protocols() != device.ProfileU2FOnly {
		t.Fatalf("U2FOnly = %v, version %q, protocols %v", ch.U2FOnly(), ch.Version(), ch.Protocols())
	}
	info, err := ch.Info(ctx)
	if err != nil || !slices.Equal(info.Versions, []string{"U2F_V2"}) {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	req := &ctap2.MakeCredentialRequest{
		ClientDataHash:   hash("u2f registration"),
		RP:               ctap2.RPEntity{ID: testRP},
		User:             ctap2.UserEntity{ID: []byte("user-2")},
		PubKeyCredParams: es256(),
		ExcludeList:      foreignIDs(2, 64),
	}
	att, err := ch.MakeCredential(ctx, req)
	if err != nil {
		t.Fatalf("MakeCredential over U2F: %v", err)
	}
	if att.Format != ctap2.FormatFIDOU2F || len(att.Statement.X5C) != 1 {
		t.Fatalf("attestation format %q with %d certificates", att.Format, len(att.Statement.X5C))
	}
	ad, err := ctap2.ParseAuthData(att.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	cred := ad.AttestedCredential
	if ad.Flags != ctap2.FlagUP|ctap2.FlagAT || cred == nil || cred.AAGUID != [16]byte{} {
		t.Fatalf("authData %+v", ad)
	}
	// The fido-u2f statement verifies as the U2F register response it came from.
	pub, err := ctap2.ParsePublicKey(cred.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := pub.(*ecdsa.PublicKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	rr := &u2f.RegisterResponse{KeyHandle: cred.CredentialID, AttestationCert: att.Statement.X5C[0], Signature: att.Statement.Sig}
	copy(rr.PublicKey[:], raw)
	var challenge [32]byte
	copy(challenge[:], req.ClientDataHash)
	if _, err := rr.Verify(ctap2.RPIDHash(testRP), challenge); err != nil {
		t.Fatalf("fido-u2f attestation: %v", err)
	}
	checkLogins(t, ch, cred.CredentialID, cred.PublicKey, 3)

	req.ExcludeList = append(req.ExcludeList, ctap2.CredentialDescriptor{Type: ctap2.CredentialTypePublicKey, ID: cred.CredentialID})
	if _, err := ch.MakeCredential(ctx, req); !errors.Is(err, ctap2.ErrCredentialExcluded) {
		t.Fatalf("MakeCredential with own credential excluded: %v, want ErrCredentialExcluded", err)
	}
	_, err = ch.GetAssertion(ctx, &ctap2.GetAssertionRequest{RPID: testRP, ClientDataHash: hash("x"), AllowList: foreignIDs(2, 32)})
	if !errors.Is(err, ctap2.ErrNoCredentials) {
		t.Fatalf("GetAssertion with foreign credentials: %v, want ErrNoCredentials", err)
	}
	rk := *req
	rk.ExcludeList = nil
	rk.Options = map[string]bool{"rk": true}
	if _, err := ch.MakeCredential(ctx, &rk); !errors.Is(err, ctap2.ErrUnsupportedOption) {
		t.Fatalf("resident key over U2F: %v, want ErrUnsupportedOption", err)
	}
	if _, err := ch.GetNextAssertion(ctx); !errors.Is(err, device.ErrNotSupported) {
		t.Fatalf("GetNextAssertion: %v, want ErrNotSupported", err)
	}
}
