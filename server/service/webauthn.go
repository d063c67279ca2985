package service

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/server/domain"
)

// The WebAuthn types of the API are those of device/webauthn, the one
// WebAuthn package of the tree (WebAuthn Level 3 §5.1 JSON forms).
type (
	CreationOptions        = webauthn.CreationOptions        // PublicKeyCredentialCreationOptionsJSON
	RequestOptions         = webauthn.RequestOptions         // PublicKeyCredentialRequestOptionsJSON
	CredentialDescriptor   = webauthn.CredentialDescriptor   // PublicKeyCredentialDescriptorJSON
	RegistrationResponse   = webauthn.RegistrationResponse   // RegistrationResponseJSON
	AuthenticationResponse = webauthn.AuthenticationResponse // AuthenticationResponseJSON
)

// userHandle derives the WebAuthn user handle of an identity: opaque bytes,
// not the identity ID itself (WebAuthn Level 3 §14.6.1 advises against
// personal data in it).
func userHandle(identityID string) []byte {
	h := sha256.Sum256([]byte("authbench user handle\x00" + identityID))
	return h[:16]
}

// creationOptions builds the registration options for a chip of identity
// identityID; the identity's chips that are not blocked are excluded, so
// the same chip is not registered twice while a blocked one can be added
// again (it then makes a new credential).
func (s *Service) creationOptions(identityID string, challenge []byte, own []domain.Authenticator) CreationOptions {
	var exclude []CredentialDescriptor
	for _, a := range own {
		if a.Kind == "chip" && a.State != domain.StateBlocked && a.CredentialID != "" && len(exclude) < maxCredentials {
			exclude = append(exclude, CredentialDescriptor{Type: webauthn.TypePublicKey, ID: a.CredentialID})
		}
	}
	user := webauthn.UserEntity{ID: webauthn.Encode(userHandle(identityID)), Name: identityID, DisplayName: identityID}
	return s.rp.CreationOptions(challenge, user, exclude, s.ceremonyTT)
}

// registration is a verified chip registration.
type registration struct {
	CredentialID   []byte
	PublicKey      []byte // COSE_Key
	AAGUID         [16]byte
	SignCount      uint32
	Format         string
	Trusted        bool
	BackupEligible bool
	BackupState    bool
}

// verifyRegistration verifies a chip's registration response (WebAuthn
// Level 3 §7.1, device/webauthn on go-webauthn) against the ceremony's
// challenge. It returns an error wrapping ErrInvalid for malformed or
// mismatched input, or ErrAttestationUntrusted for an attestation that is
// not acceptable.
func (s *Service) verifyRegistration(r *RegistrationResponse, challenge []byte) (*registration, error) {
	reg, err := s.rp.VerifyRegistration(context.Background(), r, challenge)
	if err != nil {
		return nil, fromWebAuthn(err)
	}
	return &registration{
		CredentialID:   reg.CredentialID,
		PublicKey:      reg.PublicKey,
		AAGUID:         reg.AAGUID,
		SignCount:      reg.SignCount,
		Format:         reg.Format,
		Trusted:        reg.Trusted,
		BackupEligible: reg.BackupEligible,
		BackupState:    reg.BackupState,
	}, nil
}

// assertion is a verified chip assertion.
type assertion struct {
	SignCount uint32
	BE        bool
}

// errAssertion is a failed check of an assertion that counts as a failed
// attempt (a bad signature, a wrong challenge, origin or RP, no presence).
type errAssertion struct{ check string }

func (e *errAssertion) Error() string {
	return "service: the assertion failed its " + e.check + " check"
}

// verifyAssertion verifies a chip's authentication response (WebAuthn
// Level 3 §7.2, device/webauthn on go-webauthn) for credential credID with
// COSE key coseKey. Malformed input is an error wrapping ErrInvalid
// (nothing is counted); a failed check is an *errAssertion (a failed
// attempt); a stored key that does not parse is another error.
func (s *Service) verifyAssertion(r *AuthenticationResponse, challenge []byte, credID string, coseKey []byte, backupEligible bool) (*assertion, error) {
	id, err := webauthn.Decode("the stored credential ID", credID)
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	as, err := s.rp.VerifyAssertion(r, challenge, webauthn.Credential{ID: id, PublicKey: coseKey, BackupEligible: backupEligible})
	var we *webauthn.Error
	switch {
	case errors.As(err, &we) && errors.Is(we.Err, webauthn.ErrMismatch):
		return nil, &errAssertion{we.Check}
	case err != nil:
		return nil, fromWebAuthn(err)
	}
	return &assertion{SignCount: as.SignCount, BE: as.BackupEligible}, nil
}

// fromWebAuthn maps a refusal of device/webauthn to the service's errors:
// a malformed or mismatched response is ErrInvalid, an attestation that is
// not acceptable ErrAttestationUntrusted, with the package's reason as the
// message. Other errors (a stored key that does not parse) pass through.
func fromWebAuthn(err error) error {
	var we *webauthn.Error
	if !errors.As(err, &we) {
		return fmt.Errorf("service: %w", err)
	}
	if errors.Is(we.Err, webauthn.ErrUntrusted) {
		return untrusted("%s", we.Reason)
	}
	return invalid("%s", we.Reason)
}
