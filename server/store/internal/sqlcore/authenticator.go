package sqlcore

import (
	"context"
	"errors"
	"strings"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// CreateAuthenticator implements store.Authenticators.
func (s *Store) CreateAuthenticator(ctx context.Context, c domain.Change, el store.Element) error {
	return s.createAuthenticator(ctx, c, el, -1, nil)
}

// CreateAuthenticatorAt implements store.Authenticators. The guard is the
// conditional UPDATE of identities.authenticators_version (from version to
// version+1) in the transaction that inserts the authenticator: of two
// adds from one version the second finds the version moved (PostgreSQL
// orders them by the row lock the UPDATE takes).
func (s *Store) CreateAuthenticatorAt(ctx context.Context, c domain.Change, el store.Element, version uint64) error {
	v, err := s.col.U63(version, "authenticator set version")
	if err != nil {
		return err
	}
	return s.createAuthenticator(ctx, c, el, v, nil)
}

// CreateRegistered implements store.Authenticators: the mark of the
// ceremony first, so that a second use of the ceremony stops there.
func (s *Store) CreateRegistered(ctx context.Context, c domain.Change, el store.Element, version uint64, spent store.Ceremony) error {
	v, err := s.col.U63(version, "authenticator set version")
	if err != nil {
		return err
	}
	if err := spent.Check(); err != nil {
		return err
	}
	return s.createAuthenticator(ctx, c, el, v, &spent)
}

// createAuthenticator stores a new authenticator, raising the version of
// its identity's authenticator set from version (-1: from any version),
// and the mark of its ceremony spent, if any.
func (s *Store) createAuthenticator(ctx context.Context, c domain.Change, el store.Element, version int64, spent *store.Ceremony) error {
	n, err := s.prepareAuthenticator(c, el)
	if err != nil {
		return err
	}
	var spentExp any
	if spent != nil {
		if spentExp, err = s.col.Time(spent.ExpiresAt); err != nil {
			return err
		}
	}
	return s.write(ctx, scrubIf(consumesImport(n)), func(ctx context.Context, tx Tx) error {
		if spent != nil {
			err := s.execLater(ctx, tx, s.q.ceremonyInsert, func(err error) error {
				if s.d.Class(err) == ClassUnique {
					return s.errf("ceremony %s: %w", spent.Key, store.ErrSpent)
				}
				return s.dbErr(err, "ceremony "+spent.Key)
			}, spent.Key, spent.IdentityID, columns.NonNil(spent.Data), spentExp)
			if err != nil {
				return err
			}
		}
		if err := s.insertAuthenticator(ctx, tx, n, version); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, n.c.Events) // the audit head last
	})
}

// newAuth is a new authenticator checked and converted to column values by
// prepareAuthenticator, ready for insertAuthenticator.
type newAuth struct {
	c    domain.Change
	el   store.Element
	args []any
	now  any
}

// consumesImport reports whether storing one of ns consumes the import of
// a code device serial (whose secret then needs scrubbing).
func consumesImport(ns ...*newAuth) bool {
	for _, n := range ns {
		if isCodeDevice(n.c.Authenticator.Kind) && !columns.PendingCodeDevice(&n.c.Authenticator, &n.el) {
			return true
		}
	}
	return false
}

// prepareAuthenticator checks the change c that creates an authenticator
// with element el and computes its column values, outside the
// transaction.
func (s *Store) prepareAuthenticator(c domain.Change, el store.Element) (*newAuth, error) {
	args, err := s.col.NewAuthenticator(&c, &el)
	if err != nil {
		return nil, err
	}
	now, err := s.col.Time(s.now())
	if err != nil {
		return nil, err
	}
	return &newAuth{c: c, el: el, args: args, now: now}, nil
}

// insertAuthenticator stores the prepared authenticator n in tx: it locks
// a code device serial, raises the identity's authenticator set version
// from version (-1: any), checks the tombstones of the serial, registers
// the credential ID, inserts the record and its element, and consumes a
// waiting import. The caller appends n.c.Events afterwards, taking the
// audit head last (see appendAudit). Its statements are only checked:
// where tx can (Later) they go out together, with the next statement that
// needs an answer.
func (s *Store) insertAuthenticator(ctx context.Context, tx Tx, n *newAuth, version int64) error {
	a := &n.c.Authenticator
	if isCodeDevice(a.Kind) {
		if err := s.lockSerial(ctx, tx, a.Serial); err != nil {
			return err
		}
	}
	if err := s.bumpSetVersion(ctx, tx, a, version); err != nil {
		return err
	}
	if isCodeDevice(a.Kind) {
		var k int64
		if err := tx.QueryRow(ctx, s.q.serialRevoked, a.Serial).Scan(&k); err != nil {
			return s.dbErr(err, "check tombstones")
		}
		if k > 0 {
			return s.errf("add authenticator %s: %w: serial %s was permanently blocked (revoked)", a.ID, store.ErrDuplicate, a.Serial)
		}
	}
	if a.CredentialID != "" {
		if err := s.execLater(ctx, tx, s.q.credentialInsert, s.wrapAs("add authenticator "+a.ID+": credential ID ", a.CredentialID+" (credential IDs are unique forever)"),
			a.CredentialID, a.ID, n.now); err != nil {
			return err
		}
	}
	if err := s.execLater(ctx, tx, s.q.authInsert, func(err error) error {
		return s.dbErr(err, "add authenticator "+a.ID+s.explainAuthUnique(err, a))
	}, n.args...); err != nil {
		return err
	}
	if columns.PendingCodeDevice(a, &n.el) {
		// It proves possession first (ActivateCodeDevice).
		return nil
	}
	if err := s.insertElement(ctx, tx, a.ID, &n.el); err != nil {
		return err
	}
	if isCodeDevice(a.Kind) {
		if err := s.execLater(ctx, tx, s.q.importConsume, s.wrapAs("consume the import of serial ", a.Serial), a.Serial); err != nil {
			return err
		}
	}
	return nil
}

// lockSerial takes the dialect's lock on a code device serial, if it has
// one.
func (s *Store) lockSerial(ctx context.Context, tx Tx, serial string) error {
	if s.q.lockSerial == nil {
		return nil
	}
	_, err := tx.Exec(ctx, s.q.lockSerial, serial)
	return s.dbErr(err, "lock serial "+serial)
}

// bumpSetVersion raises the authenticator set version of the identity of
// the new authenticator a by one if it is version (any version when
// version < 0), in one conditional UPDATE whose answer is only checked:
// it goes out with the next statement where tx can (Later). A bump that
// changed no row is a *staleRecord, explained (store.ErrNotFound: no such
// identity; store.ErrConflict: the version moved) at once, or by
// Store.write.
func (s *Store) bumpSetVersion(ctx context.Context, tx Tx, a *domain.Authenticator, version int64) error {
	identityID := a.IdentityID
	check := func(n int64, err error) error {
		if err != nil {
			return s.dbErr(err, "add authenticator "+a.ID+": identity "+identityID)
		}
		if n != 1 {
			return &staleRecord{version: s.q.setVersion, what: "the authenticator set of identity", id: identityID, want: uint64(version)}
		}
		return nil
	}
	if _, ok := tx.(Later); ok {
		return s.execCheck(ctx, tx, s.q.setVersionBump, check, identityID, version, version)
	}
	err := check(tx.Exec(ctx, s.q.setVersionBump, identityID, version, version))
	var st *staleRecord
	if errors.As(err, &st) {
		return s.explainStale(ctx, tx, st)
	}
	return err
}

// explainAuthUnique names the unique value an INSERT into authenticators
// collided with.
func (s *Store) explainAuthUnique(err error, a *domain.Authenticator) string {
	if s.d.Class(err) != ClassUnique {
		return ""
	}
	c := s.d.Constraint(err)
	switch {
	case c == "authenticators_pkey" || c == "authenticators.id" || c == "authenticators.identity_id, authenticators.id":
		return ": the ID is taken"
	case strings.Contains(c, "authenticators_serial_in_use") || strings.Contains(c, "authenticators.serial"):
		return ": serial " + a.Serial + " is in use by another authenticator that is neither pending nor blocked"
	}
	return ""
}

// AuthenticatorSet implements store.Authenticators with one statement:
// the identity (with the version of its set) joined with its
// authenticators, one snapshot of both.
func (s *Store) AuthenticatorSet(ctx context.Context, identityID string) (store.AuthenticatorSet, error) {
	set, _, err := s.authenticatorSet(ctx, identityID, false)
	return set, err
}

// AuthenticatorSetWithPasswords implements store.Authenticators with one
// statement: AuthenticatorSet's, joined with the password elements too.
func (s *Store) AuthenticatorSetWithPasswords(ctx context.Context, identityID string) (store.AuthenticatorSet, []*store.Element, error) {
	return s.authenticatorSet(ctx, identityID, true)
}

// authenticatorSet reads the set of identity identityID and, when
// passwords is set, the elements of its passwords (in the order of the
// set; nil for the others).
func (s *Store) authenticatorSet(ctx context.Context, identityID string, passwords bool) (store.AuthenticatorSet, []*store.Element, error) {
	var (
		set store.AuthenticatorSet
		els []*store.Element
	)
	what := "identity " + identityID
	err := s.mirrored(ctx, identityID, func(h *heldIdentity) error {
		v, version, err := s.heldIdentity(h)
		if err != nil {
			return err
		}
		set = store.AuthenticatorSet{Identity: v, Version: version}
		if n := len(h.auths); n > 0 {
			// As the statement reads them: nil when there are none.
			set.Authenticators = make([]domain.Authenticator, 0, n)
			if passwords {
				els = make([]*store.Element, 0, n)
			}
		}
		for _, a := range sortedAuths(h) {
			x, err := s.heldAuth(a)
			if err != nil {
				return err
			}
			set.Authenticators = append(set.Authenticators, x)
			if !passwords {
				continue
			}
			var el *store.Element
			if x.Kind == device.KindPassword {
				var es elementScanner
				if err := s.elementScan(&es, device.KindPassword, x.ID); err != nil {
					return err
				}
				if el, err = s.heldElement(a, device.KindPassword, &es); err != nil {
					return err
				}
			}
			els = append(els, el)
		}
		return nil
	})
	if err == nil || errors.Is(err, ErrNoRows) {
		if err != nil {
			set, els = store.AuthenticatorSet{}, nil
		}
		return set, els, s.dbErr(err, what)
	}
	q := s.q.identitySet
	if passwords {
		q = s.q.identitySetPw
	}
	err = s.read(ctx, func(ctx context.Context, tx Tx) error {
		rows, err := tx.Query(ctx, q, identityID)
		if err != nil {
			return err
		}
		defer rows.Close()
		set, els = store.AuthenticatorSet{}, nil
		var (
			ir    columns.IdentityRow
			v     int64
			ar    columns.AuthenticatorRow
			elKey string
			pr    passwordRow
			found bool
		)
		dest := append(append(ir.Dest(), &v), ar.Dest()...)
		if passwords {
			dest = append(append(dest, &elKey), pr.dest()...)
		}
		for rows.Next() {
			ar = columns.AuthenticatorRow{}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			if !found {
				found = true
				if set.Identity, err = s.col.Identity(&ir); err != nil {
					return err
				}
				if set.Version, err = s.col.FromI64(v, "authenticator set version"); err != nil {
					return err
				}
			}
			if ar.A.ID == "" {
				continue // the identity has no authenticator
			}
			a, err := s.col.Authenticator(&ar)
			if err != nil {
				return err
			}
			set.Authenticators = append(set.Authenticators, a)
			if !passwords {
				continue
			}
			var el *store.Element
			if elKey != "" && a.Kind == device.KindPassword {
				el = &store.Element{Password: pr.element(), WipedAt: columns.FromNanos(pr.wiped)}
			}
			els = append(els, el)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !found {
			return ErrNoRows
		}
		return nil
	})
	if err != nil {
		return store.AuthenticatorSet{}, nil, s.dbErr(err, what)
	}
	return set, els, nil
}

// Authenticator implements store.Authenticators.
func (s *Store) Authenticator(ctx context.Context, id string) (domain.Authenticator, error) {
	var a domain.Authenticator
	err := s.mirroredAuth(id, func(_ *heldIdentity, h *heldAuth) (err error) {
		a, err = s.heldAuth(h)
		return err
	})
	if err == nil {
		return a, nil
	}
	if a, err = readRow(ctx, s, "authenticator "+id, s.scanAuthenticator, s.q.authByID, id); err == nil {
		s.mirrorLearn(ctx, a.IdentityID)
	}
	return a, err
}

// AuthenticatorWithIdentity implements store.Authenticators: one
// statement, a join of the authenticator with its identity.
func (s *Store) AuthenticatorWithIdentity(ctx context.Context, id string) (domain.Identity, domain.Authenticator, error) {
	var (
		v domain.Identity
		a domain.Authenticator
	)
	err := s.mirroredAuth(id, func(hi *heldIdentity, ha *heldAuth) (err error) {
		if v, _, err = s.heldIdentity(hi); err != nil {
			return err
		}
		a, err = s.heldAuth(ha)
		return err
	})
	if err == nil {
		return v, a, nil
	}
	err = s.read(ctx, func(ctx context.Context, tx Tx) error {
		var (
			ir columns.IdentityRow
			ar columns.AuthenticatorRow
		)
		if err := tx.QueryRow(ctx, s.q.authWithIdentity, id).Scan(append(ir.Dest(), ar.Dest()...)...); err != nil {
			return err
		}
		var err error
		if v, err = s.col.Identity(&ir); err != nil {
			return err
		}
		a, err = s.col.Authenticator(&ar)
		return err
	})
	if err != nil {
		return domain.Identity{}, domain.Authenticator{}, s.dbErr(err, "authenticator "+id)
	}
	s.mirrorLearn(ctx, v.ID)
	return v, a, nil
}

// ListAuthenticators implements store.Authenticators.
func (s *Store) ListAuthenticators(ctx context.Context, identityID string) ([]domain.Authenticator, error) {
	var out []domain.Authenticator
	err := s.mirrored(ctx, identityID, func(h *heldIdentity) error {
		for _, a := range sortedAuths(h) {
			x, err := s.heldAuth(a)
			if err != nil {
				return err
			}
			out = append(out, x)
		}
		return nil
	})
	if err == nil {
		return out, nil
	}
	if errors.Is(err, ErrNoRows) {
		return nil, nil // no such identity: no authenticators
	}
	return s.readAuthenticators(ctx, "authenticators of "+identityID, s.q.authsOfIdentity, identityID)
}

// FindAuthenticators implements store.Authenticators.
func (s *Store) FindAuthenticators(ctx context.Context, ref domain.Ref) ([]domain.Authenticator, error) {
	if ref.Serial == "" && ref.CredentialID == "" {
		return nil, nil
	}
	return s.readAuthenticators(ctx, "find authenticators", s.q.authsFind, ref.Serial, ref.CredentialID)
}

func (s *Store) readAuthenticators(ctx context.Context, what string, q *Stmt, args ...any) ([]domain.Authenticator, error) {
	var out []domain.Authenticator
	err := s.read(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = s.queryAuthenticators(ctx, tx, q, args...)
		return err
	})
	if err != nil {
		return nil, s.dbErr(err, what)
	}
	return out, nil
}

func (s *Store) queryAuthenticators(ctx context.Context, tx Tx, q *Stmt, args ...any) ([]domain.Authenticator, error) {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Authenticator
	for rows.Next() {
		a, err := s.scanAuthenticator(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// UpdateAuthenticator implements store.Authenticators.
func (s *Store) UpdateAuthenticator(ctx context.Context, a domain.Authenticator) error {
	return s.ApplyChange(ctx, domain.Change{Authenticator: a})
}

// ApplyChange implements store.Authenticators. The version check is the
// UPDATE (or DELETE) ... WHERE version = old itself; the wipe, the
// tombstone, the end of the sessions the authenticator proved and the audit
// events follow in the same transaction.
func (s *Store) ApplyChange(ctx context.Context, c domain.Change) error {
	ac, err := s.prepareChange(c)
	if err != nil {
		return err
	}
	return s.write(ctx, scrubIf(c.WipeSecret || c.Remove), func(ctx context.Context, tx Tx) error {
		return s.applyChange(ctx, tx, ac)
	})
}

// appliedChange is a change checked and converted to column values by
// prepareChange, ready for applyChange.
type appliedChange struct {
	c       domain.Change
	ts      []any // activated_at, last_used_at, suspended_at, blocked_at
	tomb    any   // the tombstone's blocked_at
	wipedAt any
	// otp, when set, is the OTP step a code login used: the update of
	// the record raises the code device's watermark to it, from below.
	otp *otpStep
}

// otpStep is an OTP time step and the drift it was found at.
type otpStep struct{ step, drift int64 }

// prepareChange checks c and computes its column values, outside the
// transaction.
func (s *Store) prepareChange(c domain.Change) (*appliedChange, error) {
	ts, err := s.col.Change(&c)
	if err != nil {
		return nil, err
	}
	ac := &appliedChange{c: c, ts: ts}
	if t := c.Tombstone; t != nil {
		if ac.tomb, err = s.col.Time(t.BlockedAt); err != nil {
			return nil, err
		}
	}
	if ac.wipedAt, err = s.col.Time(s.now()); err != nil {
		return nil, err
	}
	return ac, nil
}

// applyChange applies the prepared change ac in tx (see ApplyChange).
func (s *Store) applyChange(ctx context.Context, tx Tx, ac *appliedChange) error {
	if err := s.applyRecord(ctx, tx, ac); err != nil {
		return err
	}
	return s.appendAudit(ctx, tx, ac.c.Events)
}

// applyRecord is applyChange without the audit events: the caller appends
// them (with those of other changes of the same transaction).
func (s *Store) applyRecord(ctx context.Context, tx Tx, ac *appliedChange) error {
	c := &ac.c
	a := &c.Authenticator
	from := int64(a.Version - 1)
	if t := c.Tombstone; t != nil && t.Serial != "" && isCodeDevice(t.Kind) {
		if err := s.lockSerial(ctx, tx, t.Serial); err != nil {
			return err
		}
	}
	// The version check, and the check that the identity, kind and
	// reference stay as they are, are the statement's WHERE clause.
	var q *Stmt
	var args []any
	_, later := tx.(Later)
	if c.Remove {
		q, args = s.q.authDelete, []any{a.ID, from, a.IdentityID, string(a.Kind), a.Serial, a.CredentialID}
	} else {
		ts := ac.ts
		// The parameters of authUpdate, then the state again: without
		// the first, those of authUpdateSameState. With an OTP step, the
		// watermark's new values follow the version, and the step the
		// credential ID (authUpdateOTP, authUpdateSameStateOTP).
		both := make([]any, 0, 22)
		both = append(both, string(a.State), a.Label, int64(a.Failures), int64(a.Suspensions),
			ts[0], ts[1], ts[2], string(a.SuspendReason), ts[3], string(a.BlockReason), int64(a.Version))
		if ac.otp != nil {
			both = append(both, ac.otp.step, ac.otp.drift)
		}
		both = append(both, a.ID, from, a.IdentityID, string(a.Kind), a.Serial, a.CredentialID)
		if ac.otp != nil {
			both = append(both, ac.otp.step)
		}
		both = append(both, string(a.State))
		full, same := s.q.authUpdate, s.q.authUpdateSameState
		if ac.otp != nil {
			full, same = s.q.authUpdateOTP, s.q.authUpdateSameStateOTP
		}
		q, args = full, both[:len(both)-1]
		if !later {
			// Most changes (a login's success or failure) leave the
			// state as it is: the update that sets everything but the
			// state, and only where the state is the new one already,
			// costs SQLite no search of authenticators_serial_in_use
			// (queries.go). When it changes no row, the state changes
			// or the record is stale, and the full update below tells
			// which. A tx that sends statements later (PostgreSQL) has
			// no answer to choose by, and needs none: PostgreSQL
			// compares the old and new values of the columns its
			// indexes name.
			n, err := tx.Exec(ctx, same, both[1:]...)
			if err != nil {
				return s.dbErr(err, "update authenticator "+a.ID)
			}
			if n == 1 {
				q = nil
			}
		}
	}
	check := func(n int64, err error) error {
		if err != nil {
			return s.dbErr(err, "update authenticator "+a.ID)
		}
		if n != 1 {
			st := &staleRecord{version: s.q.authVersion, what: "authenticator", id: a.ID, want: a.Version - 1,
				fixed: "the identity, kind and reference cannot change"}
			if ac.otp != nil {
				st.version, st.guarded, st.step = s.q.authGuard, true, ac.otp.step
			}
			return st
		}
		return nil
	}
	if q == nil {
		// Updated with the state as it was.
	} else if later {
		// It goes out with what follows (the end of the sessions, the
		// wipe, the tombstone: they run after it, in order, and the
		// transaction they are in is rolled back should it change no
		// row), up to the next statement that needs an answer; a
		// *staleRecord is explained by Store.write.
		if err := s.execCheck(ctx, tx, q, check, args...); err != nil {
			return err
		}
	} else if err := check(tx.Exec(ctx, q, args...)); err != nil {
		var st *staleRecord
		if errors.As(err, &st) {
			return s.explainStale(ctx, tx, st)
		}
		return err
	}
	if c.Remove || a.State != domain.StateActive {
		// After the update or delete, which holds the record (PostgreSQL
		// locks the row) and checked its identity: a login writing a
		// session this authenticator proves has either committed, and
		// its session is deleted here, or it will find the record not
		// active or gone (checkProofs). The lookup of a session refuses
		// one whose proof is gone, but a removed authenticator's sessions
		// go with it, as they went with the links' cascade.
		if err := s.endSessionsOf(ctx, tx, a.IdentityID, a.ID); err != nil {
			return err
		}
	}
	if c.WipeSecret && !c.Remove {
		if err := s.wipeElement(ctx, tx, a.Kind, a.ID, ac.wipedAt); err != nil {
			return err
		}
	}
	if t := c.Tombstone; t != nil {
		return s.insertTombstone(ctx, tx, t, ac.tomb)
	}
	return nil
}

func (s *Store) scanAuthenticator(sc Row) (domain.Authenticator, error) {
	var r columns.AuthenticatorRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return domain.Authenticator{}, err
	}
	return s.col.Authenticator(&r)
}
