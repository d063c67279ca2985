package sqlcore

import (
	"context"
	"errors"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// insertElement stores el (already checked) for authenticator id, later
// where tx can (execLater).
func (s *Store) insertElement(ctx context.Context, tx Tx, id string, el *store.Element) error {
	var (
		q    *Stmt
		args []any
	)
	switch {
	case el.Chip != nil:
		c := el.Chip
		q, args = s.q.chipInsert, []any{id, c.PublicKey, columns.NilIfEmpty(c.AAGUID), int64(c.SignCount),
			c.AttestationFormat, c.BackupEligible, c.BackupState}
	case el.Code != nil:
		c := el.Code
		if err := s.execLater(ctx, tx, s.q.codeInsert, s.wrapAs("store the element of ", id),
			id, c.Secret.Blob, c.Secret.KeyID, int64(c.Digits), int64(c.Period/time.Second), int64(c.Algorithm)); err != nil {
			return err
		}
		if c.HighestStep == 0 && c.Drift == 0 {
			return nil // the authenticator's row has them already
		}
		// The watermark is in the authenticator's row (migrations: SQLite 0010, PostgreSQL 0009).
		q, args = s.q.otpSet, []any{int64(c.HighestStep), int64(c.Drift), id}
	case el.App != nil:
		q, args = s.q.appInsert, []any{id, el.App.PublicKey, el.App.PINVerifier}
	case el.Password != nil:
		q, args = s.q.passwordInsert, []any{id, el.Password.Verifier}
	default:
		return nil
	}
	return s.execLater(ctx, tx, q, s.wrapAs("store the element of ", id), args...)
}

// wipeElement deletes the key material of the element of authenticator id
// of kind k, keeping the row (and its non-secret fields); later where tx
// can (execLater).
func (s *Store) wipeElement(ctx context.Context, tx Tx, k device.Kind, id string, now any) error {
	var q *Stmt
	switch {
	case k == device.KindChip:
		q = s.q.chipWipe
	case isCodeDevice(k):
		q = s.q.codeWipe
	case k == device.KindApp:
		q = s.q.appWipe
	case k == device.KindPassword:
		q = s.q.passwordWipe
	default:
		return s.errf("%w: wipe: unknown kind %q", store.ErrInvalid, k)
	}
	return s.execLater(ctx, tx, q, s.wrapAs("wipe the element of ", id), now, id)
}

// Element implements store.Elements.
func (s *Store) Element(ctx context.Context, authenticatorID string) (store.Element, error) {
	return s.ElementOfKind(ctx, authenticatorID, "")
}

// ElementOfKind implements store.Elements; kind "" reads the kind first,
// in the same read (Element).
func (s *Store) ElementOfKind(ctx context.Context, authenticatorID string, kind device.Kind) (store.Element, error) {
	var (
		el store.Element
		es elementScanner
	)
	err := s.mirroredAuth(authenticatorID, func(_ *heldIdentity, a *heldAuth) error {
		k := kind
		if k == "" {
			k = device.Kind(a.kind())
		}
		if err := s.elementScan(&es, k, authenticatorID); err != nil {
			return err
		}
		if a.el == nil || a.elTable != es.table {
			return ErrNoRows
		}
		d, n := es.dest()
		if err := a.assignElement(d[:n]); err != nil {
			return err
		}
		var err error
		el, err = es.element(s)
		return err
	})
	if err == nil || errors.Is(err, ErrNoRows) {
		return el, s.dbErr(err, "element of "+authenticatorID)
	}
	err = s.read(ctx, func(ctx context.Context, tx Tx) error {
		k := kind
		if k == "" {
			if err := tx.QueryRow(ctx, s.q.authKind, authenticatorID).Scan(&k); err != nil {
				return err
			}
		}
		var err error
		el, err = s.readElement(ctx, tx, k, authenticatorID)
		return err
	})
	if err != nil {
		return store.Element{}, s.dbErr(err, "element of "+authenticatorID)
	}
	return el, nil
}

// readElement reads the element of authenticator id of kind k.
func (s *Store) readElement(ctx context.Context, tx Tx, k device.Kind, id string) (store.Element, error) {
	var es elementScanner
	if err := s.elementScan(&es, k, id); err != nil {
		return store.Element{}, err
	}
	d, n := es.dest()
	if err := tx.QueryRow(ctx, es.byAuth, id).Scan(d[:n]...); err != nil {
		return store.Element{}, err
	}
	return es.element(s)
}

// elementScanner reads the element of one kind: its statements, the
// destinations of a row, and the element made of the row scanned. The
// rows it scans into are its own fields, so that one scanner is one
// value (on the stack when its destinations do not escape: assignRow).
type elementScanner struct {
	id       string // the authenticator's, for errors
	byAuth   *Stmt  // the element by authenticator ID
	withAuth *Stmt  // identity, authenticator and element by authenticator ID
	table    string
	chip     chipRow
	code     codeRow
	app      appRow
	pw       passwordRow
}

// elementScan makes es the scanner of the elements of kind k of
// authenticator id.
func (s *Store) elementScan(es *elementScanner, k device.Kind, id string) error {
	es.id = id
	switch {
	case k == device.KindChip:
		es.byAuth, es.withAuth, es.table = s.q.chipByAuth, s.q.authWithChip, "chip_elements"
	case isCodeDevice(k):
		es.byAuth, es.withAuth, es.table = s.q.codeByAuth, s.q.authWithCode, "code_elements"
	case k == device.KindApp:
		es.byAuth, es.withAuth, es.table = s.q.appByAuth, s.q.authWithApp, "app_elements"
	case k == device.KindPassword:
		es.byAuth, es.withAuth, es.table = s.q.pwByAuth, s.q.authWithPassword, "password_elements"
	default:
		return s.errf("%w: element of %s: unknown kind %q", store.ErrInvalid, id, k)
	}
	return nil
}

// dest returns the destinations of a row of es's table: the first n of
// d. An array, not a slice, so that the caller's copy and the scanner
// stay where the caller keeps them (on its stack when the destinations
// do not escape).
func (es *elementScanner) dest() (d [8]any, n int) {
	switch es.table {
	case "chip_elements":
		r := &es.chip
		return [8]any{&r.pub, &r.aaguid, &r.count, &r.format, &r.be, &r.bs, &r.wiped}, 7
	case "code_elements":
		r := &es.code
		return [8]any{&r.secret, &r.keyID, &r.digits, &r.period, &r.alg, &r.drift, &r.highest, &r.wiped}, 8
	case "app_elements":
		r := &es.app
		return [8]any{&r.pub, &r.pin, &r.wiped}, 3
	case "password_elements":
		r := &es.pw
		return [8]any{&r.verifier, &r.wiped}, 2
	}
	return d, 0
}

// element returns the element made of the row scanned.
func (es *elementScanner) element(s *Store) (store.Element, error) {
	var (
		el    store.Element
		wiped *int64
		err   error
	)
	switch es.table {
	case "chip_elements":
		el.Chip, err = s.chip(&es.chip, es.id)
		wiped = es.chip.wiped
	case "code_elements":
		el.Code, err = s.code(&es.code, es.id)
		wiped = es.code.wiped
	case "app_elements":
		el.App, wiped = es.app.element(), es.app.wiped
	case "password_elements":
		el.Password, wiped = es.pw.element(), es.pw.wiped
	}
	if err != nil {
		return store.Element{}, err
	}
	el.WipedAt = columns.FromNanos(wiped)
	return el, nil
}

// AuthenticatorWithElement implements store.Elements.
func (s *Store) AuthenticatorWithElement(ctx context.Context, id string, kind device.Kind) (domain.Identity, domain.Authenticator, *store.Element, error) {
	var (
		v  domain.Identity
		a  domain.Authenticator
		el *store.Element
		es elementScanner
	)
	if err := s.elementScan(&es, kind, id); err != nil {
		return domain.Identity{}, domain.Authenticator{}, nil, err
	}
	err := s.mirroredAuth(id, func(hi *heldIdentity, ha *heldAuth) (err error) {
		if v, _, err = s.heldIdentity(hi); err != nil {
			return err
		}
		if a, err = s.heldAuth(ha); err != nil {
			return err
		}
		el, err = s.heldElement(ha, kind, &es)
		return err
	})
	if err == nil {
		return v, a, el, nil
	}
	return s.readWithElement(ctx, id, kind)
}

// readWithElement is AuthenticatorWithElement from the database (its
// variables are its own: the mirror's answer above allocates none of
// them).
func (s *Store) readWithElement(ctx context.Context, id string, kind device.Kind) (domain.Identity, domain.Authenticator, *store.Element, error) {
	var (
		v  domain.Identity
		a  domain.Authenticator
		el *store.Element
		es elementScanner
	)
	if err := s.elementScan(&es, kind, id); err != nil {
		return domain.Identity{}, domain.Authenticator{}, nil, err
	}
	err := s.read(ctx, func(ctx context.Context, tx Tx) error {
		var (
			ir columns.IdentityRow
			ar columns.AuthenticatorRow
		)
		d, n := es.dest()
		dest := append(append(ir.Dest(), ar.Dest()...), d[:n]...)
		err := tx.QueryRow(ctx, es.withAuth, id, string(kind)).Scan(dest...)
		if errors.Is(err, ErrNoRows) {
			// No element (a pending code device), or not of that kind,
			// or no such authenticator: the two records alone.
			row := tx.QueryRow(ctx, s.q.authWithIdentity, id)
			if err := row.Scan(append(ir.Dest(), ar.Dest()...)...); err != nil {
				return err
			}
		} else if err != nil {
			return err
		} else {
			e, err := es.element(s)
			if err != nil {
				return err
			}
			el = &e
		}
		if v, err = s.col.Identity(&ir); err != nil {
			return err
		}
		a, err = s.col.Authenticator(&ar)
		return err
	})
	if err != nil {
		return domain.Identity{}, domain.Authenticator{}, nil, s.dbErr(err, "authenticator "+id)
	}
	s.mirrorLearn(ctx, v.ID)
	return v, a, el, nil
}

// chipRow receives a chip_elements row (public_key, aaguid, sign_count,
// attestation_format, backup_eligible, backup_state, wiped_at).
type chipRow struct {
	pub, aaguid []byte
	count       int64
	format      string
	be, bs      bool
	wiped       *int64
}

func (s *Store) chip(r *chipRow, id string) (*store.ChipElement, error) {
	if r.count < 0 || r.count > 1<<32-1 {
		return nil, s.errf("%w: element of %s: sign count %d", store.ErrInvalid, id, r.count)
	}
	return &store.ChipElement{PublicKey: columns.NilIfEmpty(r.pub), AAGUID: columns.NilIfEmpty(r.aaguid),
		SignCount: uint32(r.count), AttestationFormat: r.format, BackupEligible: r.be, BackupState: r.bs}, nil
}

// codeRow receives a code device's element (codeElementCols: secret,
// key_id, digits, period_s, algorithm of code_elements, drift and
// highest_step of the authenticator, wiped_at).
type codeRow struct {
	secret              []byte
	keyID               *string
	digits, period, alg int64
	drift, highest      int64
	wiped               *int64
}

func (s *Store) code(r *codeRow, id string) (*store.CodeElement, error) {
	c := &store.CodeElement{Secret: store.Sealed{Blob: columns.NilIfEmpty(r.secret)}}
	if r.keyID != nil {
		c.Secret.KeyID = *r.keyID
	}
	var err error
	if c.OTPParams, err = columns.OTPParams(r.digits, r.period, r.alg); err != nil {
		return nil, s.errf("element of %s: %w", id, err)
	}
	if c.HighestStep, err = s.col.FromI64(r.highest, "highest step"); err != nil {
		return nil, err
	}
	if r.drift < -(1<<31) || r.drift > 1<<31-1 {
		return nil, s.errf("%w: element of %s: drift %d", store.ErrInvalid, id, r.drift)
	}
	c.Drift = int(r.drift)
	return c, nil
}

// appRow receives an app_elements row (public_key, pin_verifier,
// wiped_at).
type appRow struct {
	pub   []byte
	pin   *string
	wiped *int64
}

func (r *appRow) element() *store.AppElement {
	a := &store.AppElement{PublicKey: columns.NilIfEmpty(r.pub)}
	if r.pin != nil {
		a.PINVerifier = *r.pin
	}
	return a
}

// passwordRow receives a password_elements row (verifier, wiped_at).
type passwordRow struct {
	verifier *string
	wiped    *int64
}

func (r *passwordRow) dest() []any { return []any{&r.verifier, &r.wiped} }

func (r *passwordRow) element() *store.PasswordElement {
	p := &store.PasswordElement{}
	if r.verifier != nil {
		p.Verifier = *r.verifier
	}
	return p
}

// AdvanceOTPStep implements store.Elements with one conditional UPDATE:
// of writers raising one element to one step at once, exactly one sees a
// changed row (PostgreSQL re-evaluates the WHERE clause on the committed
// row after waiting for its lock; SQLite has one writer at a time).
func (s *Store) AdvanceOTPStep(ctx context.Context, authenticatorID string, step uint64, drift int) (bool, error) {
	st, err := s.col.U63(step, "time step")
	if err != nil {
		return false, err
	}
	var ok bool
	err = s.write(ctx, Single, func(ctx context.Context, tx Tx) error {
		var err error
		ok, err = s.advanceOTP(ctx, tx, authenticatorID, st, drift)
		return err
	})
	return ok, err
}

// advanceOTP raises the OTP watermark of code device aid to step; it
// returns false when the step was used already, or an error wrapping
// store.ErrNotFound when there is no live element.
func (s *Store) advanceOTP(ctx context.Context, tx Tx, aid string, step int64, drift int) (bool, error) {
	if _, ok := tx.(Later); ok {
		return true, s.advanceLater(ctx, tx, s.q.otpAdvance, s.q.codeLive, aid, "OTP step", "code device element of "+aid, step, int64(drift), aid, step, aid)
	}
	n, err := tx.Exec(ctx, s.q.otpAdvance, step, int64(drift), aid, step, aid)
	if err != nil {
		return false, s.dbErr(err, "advance the OTP step of "+aid)
	}
	if n == 1 {
		return true, nil
	}
	return false, s.live(ctx, tx, s.q.codeLive, aid, "code device element of "+aid)
}

// AdvanceSignCount implements store.Elements with one conditional UPDATE,
// as AdvanceOTPStep.
func (s *Store) AdvanceSignCount(ctx context.Context, credentialID string, count uint32) (bool, error) {
	var ok bool
	err := s.write(ctx, Single, func(ctx context.Context, tx Tx) error {
		var err error
		ok, err = s.advanceSign(ctx, tx, credentialID, count)
		return err
	})
	return ok, err
}

// advanceSign raises the signature counter of chip credential cred to
// count by the rule of AdvanceSignCount.
func (s *Store) advanceSign(ctx context.Context, tx Tx, cred string, count uint32) (bool, error) {
	c := int64(count)
	if _, ok := tx.(Later); ok {
		return true, s.advanceLater(ctx, tx, s.q.signAdvance, s.q.chipLive, cred, "sign count", "chip credential "+cred, c, cred, c, c)
	}
	n, err := tx.Exec(ctx, s.q.signAdvance, c, cred, c, c)
	if err != nil {
		return false, s.dbErr(err, "advance the sign count of credential "+cred)
	}
	if n == 1 {
		return true, nil
	}
	return false, s.live(ctx, tx, s.q.chipLive, cred, "chip credential "+cred)
}

// advanceLater sends q, the advance of a replay guard (of key, named what),
// with the transaction's next statement (Later): a guard that did not
// move is then an error, a *guardMiss, that the write returns once it is
// rolled back; guardMiss.explain tells what it means, with live.
func (s *Store) advanceLater(ctx context.Context, tx Tx, q, live *Stmt, key, guard, what string, args ...any) error {
	return s.execCheck(ctx, tx, q, func(n int64, err error) error {
		if err != nil {
			return s.dbErr(err, "advance the "+guard+" of "+key)
		}
		if n != 1 {
			return &guardMiss{live: live, key: key, what: what}
		}
		return nil
	}, args...)
}

// guardMiss is the error of a replay guard that did not move, checked
// after its statement was sent with others (advanceLater).
type guardMiss struct {
	live      *Stmt
	key, what string
}

func (e *guardMiss) Error() string { return e.what + ": replay guard not advanced" }

// explain returns nil when the guard did not move because the proof was
// replayed (its element is there, not wiped), or the error of live.
func (e *guardMiss) explain(ctx context.Context, s *Store) error {
	return s.read(ctx, func(ctx context.Context, tx Tx) error { return s.live(ctx, tx, e.live, e.key, e.what) })
}

// live returns nil when q (selecting wiped_at of one element by arg) finds
// an element that was not wiped, else an error wrapping store.ErrNotFound.
func (s *Store) live(ctx context.Context, tx Tx, q *Stmt, arg, what string) error {
	var wiped *int64
	err := tx.QueryRow(ctx, q, arg).Scan(&wiped)
	switch {
	case errors.Is(err, ErrNoRows):
		return s.errf("%s: %w", what, store.ErrNotFound)
	case err != nil:
		return s.dbErr(err, what)
	case wiped != nil:
		return s.errf("%s: %w (its key material was wiped)", what, store.ErrNotFound)
	}
	return nil
}

// UpdateSecret implements store.Elements (one conditional UPDATE).
func (s *Store) UpdateSecret(ctx context.Context, authenticatorID string, from, to store.Sealed) error {
	if to.KeyID == "" || len(to.Blob) == 0 {
		return s.errf("%w: the new secret of %s needs a key ID and a blob", store.ErrInvalid, authenticatorID)
	}
	what := "code device element of " + authenticatorID
	return s.write(ctx, Scrub|Single, func(ctx context.Context, tx Tx) error {
		n, err := tx.Exec(ctx, s.q.secretUpdate, to.Blob, to.KeyID, authenticatorID, from.KeyID, columns.NonNil(from.Blob))
		if err != nil {
			return s.dbErr(err, "replace the secret of "+authenticatorID)
		}
		if n == 1 {
			return nil
		}
		if err := s.live(ctx, tx, s.q.codeLive, authenticatorID, what); err != nil {
			return err
		}
		return s.errf("%s: %w: the stored secret is not the one to replace", what, store.ErrConflict)
	})
}

// UpdateVerifier implements store.Elements (one conditional UPDATE per
// element table).
func (s *Store) UpdateVerifier(ctx context.Context, authenticatorID string, from, to string) error {
	if to == "" {
		return s.errf("%w: empty verifier for %s", store.ErrInvalid, authenticatorID)
	}
	what := "verifier of " + authenticatorID
	return s.write(ctx, Scrub|Single, func(ctx context.Context, tx Tx) error {
		for _, q := range []*Stmt{s.q.pwVerifierUpdate, s.q.appVerifierUpdate} {
			n, err := tx.Exec(ctx, q, to, authenticatorID, from)
			if err != nil {
				return s.dbErr(err, "replace the "+what)
			}
			if n == 1 {
				return nil
			}
		}
		var n int64
		err := tx.QueryRow(ctx, s.q.verifierLive, authenticatorID, authenticatorID).Scan(&n)
		switch {
		case err != nil:
			return s.dbErr(err, what)
		case n == 0:
			return s.errf("%s: %w (no password or app element, or it was wiped)", what, store.ErrNotFound)
		}
		return s.errf("%s: %w: the stored verifier is not the one to replace", what, store.ErrConflict)
	})
}
