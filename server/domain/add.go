package domain

import (
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
)

// AddRequest describes an authenticator to add to an identity.
type AddRequest struct {
	ID   string      // the new authenticator's ID, chosen by the caller
	Kind device.Kind // what it is
	Ref              // serial and credential, as Ref documents per kind
	// Label is the person's name for it ("work phone").
	Label string
}

// CheckAdd reports whether an authenticator of kind with reference ref may
// be added to identity id (DESIGN §1). existing holds the authenticators
// the store knows with the same serial or credential (of any identity) and
// all of id's own; tombstones holds the tombstones with the same serial or
// credential. Chip ceremonies call it once the new credential ID is known,
// before storing anything. The rules, in order:
//
//   - ref carries what kind needs (see Ref), else ErrInvalid;
//   - a code device serial that was permanently blocked is refused forever:
//     ErrSerialRevoked, telling the person to order a new authenticator;
//   - a chip credential or app key that was permanently blocked is refused
//     forever: ErrCredentialRevoked (a chip's serial is not revoked: the
//     same chip is added with a new credential);
//   - a serial or credential in use (pending, active, suspended) is refused:
//     ErrAlreadyAdded; except a code device serial that another identity
//     has only added (pending): a code device proves possession with a
//     code before it takes its secret, and the first to do so wins;
//   - quotas count id's authenticators of the same quota that are pending,
//     active or suspended (Policy.Quota): ErrQuotaExceeded.
//
// The identity's own state is checked by Add, which knows the actor.
// Errors are *TransitionError (Event OpAdd).
func (p Policy) CheckAdd(id Identity, existing []Authenticator, kind device.Kind, ref Ref, tombstones []Tombstone) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if err := checkRef(&id, kind, ref); err != nil {
		return err
	}
	for i := range existing {
		if err := existing[i].Validate(); err != nil {
			return err
		}
	}
	for i := range tombstones {
		if err := checkRevoked(&id, kind, ref, &tombstones[i]); err != nil {
			return err
		}
	}
	for i := range existing {
		if e := &existing[i]; e.State == StateBlocked {
			// A blocked record whose tombstone was not passed in: the
			// same rules apply.
			if err := checkRevoked(&id, kind, ref, tombstone(e, Actor{})); err != nil {
				return err
			}
		}
	}
	held := 0
	for i := range existing {
		e := &existing[i]
		if e.State == StateBlocked {
			continue
		}
		if e.State == StatePending && e.IdentityID != id.ID && isCodeDevice(e.Kind) {
			// Another identity's pending code device proves nothing
			// and holds nothing: the first to activate the serial takes
			// it (a right code proves possession).
			continue
		}
		if ref.CredentialID != "" && e.CredentialID == ref.CredentialID ||
			ref.Serial != "" && e.Serial == ref.Serial && sameQuota(e.Kind, kind) {
			where := "it is registered to another identity"
			if e.IdentityID == id.ID {
				where = "it is already your authenticator " + e.ID + " (" + string(e.State) + ")"
			}
			return refuseAdd(&id, kind, ErrAlreadyAdded, where)
		}
		if e.IdentityID == id.ID && sameQuota(e.Kind, kind) {
			held++
		}
	}
	if q := p.Quota(kind); q >= 0 && held >= q {
		return refuseAdd(&id, kind, ErrQuotaExceeded, fmt.Sprintf(
			"at most %d %s can be pending, active or suspended at once; block (or cancel) one first", q, quotaName(kind, q)))
	}
	return nil
}

// Add checks the request with CheckAdd and returns the new pending
// authenticator (Version 1) and its EventAdded. The owner, support or the
// system may add; while the identity is blocked only support may. It
// returns the errors of CheckAdd, or a *TransitionError unwrapping to
// ErrInvalid (no ID), ErrNotAllowed, ErrIdentityBlocked or ErrAlreadyAdded
// (the ID is taken).
func (p Policy) Add(id Identity, existing []Authenticator, tombstones []Tombstone, req AddRequest, by Actor, now time.Time) (Change, error) {
	if err := id.Validate(); err != nil {
		return Change{}, err
	}
	mk := func(reason error, detail string) error { return refuseAdd(&id, req.Kind, reason, detail) }
	if err := checkActor(by, id.ID, mk, ActorOwner, ActorSupport, ActorSystem); err != nil {
		return Change{}, err
	}
	if id.State == IdentityBlocked && by.Kind != ActorSupport {
		return Change{}, mk(ErrIdentityBlocked, "contact support")
	}
	if req.ID == "" {
		return Change{}, mk(ErrInvalid, "the new authenticator needs an ID")
	}
	for i := range existing {
		if existing[i].ID == req.ID {
			return Change{}, mk(ErrAlreadyAdded, "the ID "+req.ID+" is taken")
		}
	}
	if err := p.CheckAdd(id, existing, req.Kind, req.Ref, tombstones); err != nil {
		return Change{}, err
	}
	n := Authenticator{
		ID:         req.ID,
		IdentityID: id.ID,
		Kind:       req.Kind,
		State:      StatePending,
		Ref:        req.Ref,
		Label:      req.Label,
		CreatedAt:  now,
		Version:    1,
	}
	ev := authEvent(EventAdded, &n, "", by, "", now)
	ev.Details["to"] = string(n.State)
	if n.Serial != "" {
		ev.Details["serial"] = n.Serial
	}
	if n.CredentialID != "" {
		ev.Details["credential_id"] = n.CredentialID
	}
	return Change{Authenticator: n, Events: []Event{ev}}, nil
}

// checkRef refuses a reference that lacks what kind needs.
func checkRef(id *Identity, kind device.Kind, ref Ref) error {
	switch {
	case !kind.Valid():
		return refuseAdd(id, kind, ErrInvalid, fmt.Sprintf("unknown kind %q", kind))
	case isCodeDevice(kind) && ref.Serial == "":
		return refuseAdd(id, kind, ErrInvalid, "the serial number printed on the device is required")
	case kind == device.KindChip && ref.CredentialID == "":
		return refuseAdd(id, kind, ErrInvalid, "the credential ID the chip created is required")
	case kind == device.KindApp && ref.CredentialID == "":
		return refuseAdd(id, kind, ErrInvalid, "the app key's ID is required")
	}
	return nil
}

// checkRevoked refuses ref when tombstone t revokes it.
func checkRevoked(id *Identity, kind device.Kind, ref Ref, t *Tombstone) error {
	if isCodeDevice(kind) && t.RevokesSerial() && t.Serial == ref.Serial {
		return refuseAdd(id, kind, ErrSerialRevoked, "order a new authenticator")
	}
	if ref.CredentialID != "" && t.CredentialID == ref.CredentialID {
		detail := "a new credential is needed"
		switch kind {
		case device.KindChip:
			detail = "add the chip again so that it creates a new credential"
		case device.KindApp:
			detail = "register the MitID app anew (a new app key)"
		}
		return refuseAdd(id, kind, ErrCredentialRevoked, detail)
	}
	return nil
}

func refuseAdd(id *Identity, kind device.Kind, reason error, detail string) *TransitionError {
	return &TransitionError{IdentityID: id.ID, Kind: kind, Event: OpAdd, Reason: reason, Detail: detail}
}

// quotaName names the authenticators that share kind's quota, for n of them.
func quotaName(kind device.Kind, n int) string {
	s := ""
	switch kind {
	case device.KindCodeDisplay, device.KindAudioCodeReader:
		s = "code device (code display or audio code reader)"
		if n != 1 {
			s = "code devices (code displays or audio code readers)"
		}
		return s
	case device.KindApp:
		s = "MitID app"
	default:
		s = string(kind)
	}
	if n != 1 {
		s += "s"
	}
	return s
}
