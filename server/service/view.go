package service

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/audit"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// AuthenticatorView is an authenticator as the API shows it: its
// lifecycle and a summary of its security element, never the secret.
type AuthenticatorView struct {
	ID            string       `json:"id"`
	IdentityID    string       `json:"identity_id"`
	Kind          device.Kind  `json:"kind"`
	State         domain.State `json:"state"`
	Label         string       `json:"label"`
	Serial        string       `json:"serial,omitempty"`
	CredentialID  string       `json:"credential_id,omitempty"`
	Failures      int          `json:"failures"`
	Suspensions   int          `json:"suspensions"`
	CreatedAt     time.Time    `json:"created_at"`
	ActivatedAt   time.Time    `json:"activated_at,omitzero"`
	LastUsedAt    time.Time    `json:"last_used_at,omitzero"` // the last successful login with it
	SuspendedAt   time.Time    `json:"suspended_at,omitzero"`
	SuspendReason string       `json:"suspend_reason,omitempty"`
	BlockedAt     time.Time    `json:"blocked_at,omitzero"`
	BlockReason   string       `json:"block_reason,omitempty"`
	Version       uint64       `json:"version"`
	// Element is one of ChipSummary, CodeSummary, AppSummary,
	// PasswordSummary or WipedSummary.
	Element any `json:"element"`
}

// ChipSummary describes a chip's registered credential.
type ChipSummary struct {
	AAGUID             string `json:"aaguid"`
	SignCount          uint32 `json:"sign_count"`
	AttestationFormat  string `json:"attestation_format"`
	AttestationTrusted bool   `json:"attestation_trusted"`
	// ChipSerial is set only for chips enrolled before the server stopped
	// recording the serial number of a chip's attestation certificate.
	ChipSerial string `json:"chip_serial,omitempty"`
}

// CodeSummary describes a code device's OTP generator.
type CodeSummary struct {
	Digits        int    `json:"digits"`
	PeriodSeconds int    `json:"period_seconds"`
	Algorithm     string `json:"algorithm"`
	DriftSteps    int    `json:"drift_steps"`
	LastStep      uint64 `json:"last_step"`
}

// AppSummary describes an app's device key.
type AppSummary struct {
	PublicKeyAlg string `json:"public_key_alg"`
}

// PasswordSummary is empty: a password has nothing to show.
type PasswordSummary struct{}

// WipedSummary marks an element wiped by a permanent block.
type WipedSummary struct {
	Wiped bool `json:"wiped"`
}

// IdentityView is an identity with its authenticators.
type IdentityView struct {
	ID             string              `json:"id"`
	State          string              `json:"state"`
	BlockedReason  string              `json:"blocked_reason,omitempty"`
	CreatedAt      time.Time           `json:"created_at"`
	Version        uint64              `json:"version"`
	Authenticators []AuthenticatorView `json:"authenticators"`
}

// ActorView says who made a change.
type ActorView struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Via  string `json:"via,omitempty"`
}

// EventView is one audit record: Seq is its place in the chain of
// IdentityID, Version the first byte of its canonical form (server/audit),
// and Hash what server/audit computes over PrevHash and that form.
type EventView struct {
	Version         uint8             `json:"version"`
	Seq             uint64            `json:"seq"`
	Time            time.Time         `json:"time"`
	Type            string            `json:"type"`
	IdentityID      string            `json:"identity_id"`
	AuthenticatorID string            `json:"authenticator_id,omitempty"`
	Actor           ActorView         `json:"actor"`
	Reason          string            `json:"reason,omitempty"`
	Details         map[string]string `json:"details,omitempty"`
	Hash            string            `json:"hash"`
	PrevHash        string            `json:"prev_hash"`
}

// The attestation format stored for a chip whose attestation did not chain
// to a trusted root carries this suffix (the store keeps one text field).
const untrustedSuffix = "/untrusted"

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// viewAuthenticator builds the view of a with its element el (nil for a
// chip whose activation is pending and which is not stored yet).
func viewAuthenticator(a *domain.Authenticator, el *store.Element) AuthenticatorView {
	v := AuthenticatorView{
		ID:            a.ID,
		IdentityID:    a.IdentityID,
		Kind:          a.Kind,
		State:         a.State,
		Label:         a.Label,
		Serial:        a.Serial,
		CredentialID:  a.CredentialID,
		Failures:      a.Failures,
		Suspensions:   a.Suspensions,
		CreatedAt:     utc(a.CreatedAt),
		ActivatedAt:   utc(a.ActivatedAt),
		LastUsedAt:    utc(a.LastUsedAt),
		SuspendedAt:   utc(a.SuspendedAt),
		SuspendReason: string(a.SuspendReason),
		BlockedAt:     utc(a.BlockedAt),
		BlockReason:   string(a.BlockReason),
		Version:       a.Version,
	}
	v.Element = summarize(a, el)
	return v
}

func summarize(a *domain.Authenticator, el *store.Element) any {
	if el == nil {
		if a.Kind == device.KindPassword {
			return PasswordSummary{}
		}
		return struct{}{}
	}
	if !el.WipedAt.IsZero() {
		return WipedSummary{Wiped: true}
	}
	switch {
	case el.Chip != nil:
		c := el.Chip
		format, trusted := splitFormat(c.AttestationFormat)
		s := ChipSummary{SignCount: c.SignCount, AttestationFormat: format, AttestationTrusted: trusted}
		if len(c.AAGUID) == 16 {
			s.AAGUID = formatAAGUID(c.AAGUID)
		} else {
			s.AAGUID = formatAAGUID(make([]byte, 16))
		}
		if a.Kind == device.KindChip {
			s.ChipSerial = a.Serial
		}
		return s
	case el.Code != nil:
		c := el.Code
		s := CodeSummary{Digits: c.Digits, PeriodSeconds: int(c.Period / time.Second), DriftSteps: c.Drift, LastStep: c.HighestStep}
		if s.Digits == 0 {
			s.Digits = 6
		}
		if s.PeriodSeconds == 0 {
			s.PeriodSeconds = 30
		}
		alg := c.Algorithm
		if alg == 0 {
			alg = 1
		}
		s.Algorithm = alg.String()
		return s
	case el.App != nil:
		return AppSummary{PublicKeyAlg: appKeyAlg(el.App.PublicKey)}
	case el.Password != nil:
		return PasswordSummary{}
	}
	return struct{}{}
}

// splitFormat returns the attestation format and whether it was trusted.
func splitFormat(stored string) (string, bool) {
	if f, ok := strings.CutSuffix(stored, untrustedSuffix); ok {
		return f, false
	}
	return stored, stored != "" && stored != "none"
}

// formatAAGUID prints 16 bytes in the UUID form (RFC 9562 §4).
func formatAAGUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// appKeyAlg names the algorithm of an app's SubjectPublicKeyInfo.
func appKeyAlg(der []byte) string {
	if _, err := x509.ParsePKIXPublicKey(der); err != nil {
		return "unknown"
	}
	return "ES256"
}

// viewEvent decodes an audit record's body into its view. It returns an
// error when the body is not an audit record.
func viewEvent(r *store.AuditRecord) (EventView, error) {
	rec, err := audit.ParseRecord(r.Body)
	if err != nil {
		return EventView{}, fmt.Errorf("service: audit record %d: %w", r.Seq, err)
	}
	return EventView{
		Version:         rec.Version,
		Seq:             rec.Seq,
		Time:            rec.Time.UTC(),
		Type:            string(rec.Type),
		IdentityID:      rec.IdentityID,
		AuthenticatorID: rec.AuthenticatorID,
		Actor:           ActorView{Kind: string(rec.Actor.Kind), ID: rec.Actor.ID, Via: rec.Actor.Via},
		Reason:          rec.Reason,
		Details:         rec.Details,
		Hash:            rec.Hash.String(),
		PrevHash:        rec.PrevHash.String(),
	}, nil
}
