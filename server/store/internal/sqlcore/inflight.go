package sqlcore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// InFlight holds the attempts in flight against the subjects of one
// database in memory, for a backend whose database only one process writes
// (SQLite: the backend locks the file against other writing processes and
// shares one InFlight between the stores of a process that open the same
// file). A reservation then costs a read and no write: nothing else can
// reserve against the same subjects, and an attempt's outcome is committed
// before its reservation is dropped.
//
// A reservation counts the attempts already in flight against its subject
// first, under the lock, and adds itself; then it reads the subject's state
// and failures, in a read transaction that begins after that (or from the
// mirror, which has every commit applied before the commit's writes
// return: Mirror). An attempt ends (its reservation is dropped) only after
// the write with its outcome committed, so each attempt counted in flight either is among the
// failures read as well (counted twice: the reservation is refused and
// waits, which is safe) or has not been decided yet; and an attempt that
// ended before the count is among the failures read. The failures read
// plus the attempts counted never undercount, so no more than the limit of
// guesses is ever evaluated.
//
// Nothing of it is on the disk: a crash of the process takes the checks
// it reserved with it, unanswered, as a crash of the machine does with the
// reservations of a store that writes them (Lapse).
type InFlight struct {
	mu      sync.Mutex
	subject map[string]map[string]time.Time // subject → attempt ID → expiry
	of      map[string]string               // attempt ID → subject
}

// NewInFlight returns an empty registry of attempts in flight.
func NewInFlight() *InFlight {
	return &InFlight{subject: map[string]map[string]time.Time{}, of: map[string]string{}}
}

// attemptSubject names what a is against.
func attemptSubject(a *store.Attempt) string {
	if a.Serial != "" {
		return "serial\x00" + a.Serial
	}
	return "authenticator\x00" + a.AuthenticatorID
}

// add records a in flight and returns how many other attempts against its
// subject are in flight and have not expired at now, or false when a's ID
// is taken.
func (f *InFlight) add(a *store.Attempt, now time.Time) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.of[a.ID]; ok {
		return 0, false
	}
	sub := attemptSubject(a)
	m := f.subject[sub]
	if m == nil {
		m = map[string]time.Time{}
		f.subject[sub] = m
	}
	n := 0
	for _, exp := range m {
		if exp.After(now) {
			n++
		}
	}
	m[a.ID] = a.ExpiresAt
	f.of[a.ID] = sub
	return n, true
}

// end drops attempt id (nothing when it is not in flight).
func (f *InFlight) end(id string) {
	if id == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sub, ok := f.of[id]
	if !ok {
		return
	}
	delete(f.of, id)
	if m := f.subject[sub]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(f.subject, sub)
		}
	}
}

// sweep drops the attempts expired at now and returns how many.
func (f *InFlight) sweep(now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for sub, m := range f.subject {
		for id, exp := range m {
			if !exp.After(now) {
				delete(m, id)
				delete(f.of, id)
				n++
			}
		}
		if len(m) == 0 {
			delete(f.subject, sub)
		}
	}
	return n
}

// reserveInMemory is ReserveAttempt over s.inFlight.
func (s *Store) reserveInMemory(ctx context.Context, a store.Attempt, max int, now time.Time) error {
	what := attemptWhat(&a)
	inFlight, ok := s.inFlight.add(&a, now)
	if !ok {
		return s.errf("attempt %s: %w", a.ID, store.ErrDuplicate)
	}
	if max >= 0 && inFlight >= max {
		s.inFlight.end(a.ID)
		return s.errf("%s: %w (%d attempts in flight, limit %d)", what, store.ErrExhausted, inFlight, max)
	}
	var (
		failures int64
		active   bool
	)
	err := errNotHeld
	if a.Serial == "" {
		err = s.mirroredAuth(a.AuthenticatorID, func(_ *heldIdentity, h *heldAuth) error {
			x, err := s.heldAuth(h)
			failures, active = int64(x.Failures), x.State == domain.StateActive
			return err
		})
	}
	if err != nil && !errors.Is(err, ErrNoRows) {
		err = s.read(ctx, func(ctx context.Context, tx Tx) error {
			var err error
			failures, active, err = s.attemptSubject(ctx, tx, &a)
			return err
		})
	}
	if err != nil {
		s.inFlight.end(a.ID)
		return s.dbErr(err, "reserve an attempt against "+what)
	}
	if !active || max >= 0 && failures+int64(inFlight) >= int64(max) {
		s.inFlight.end(a.ID)
		return s.errf("%s: %w (%d failures, %d attempts in flight, limit %d)", what, store.ErrExhausted, failures, inFlight, max)
	}
	return nil
}

// writeEnding runs fn as write does; fn ends attempt id (endAttempt, a
// delete in the database). Held in memory, the attempt ends once the write
// committed instead.
func (s *Store) writeEnding(ctx context.Context, f Flags, id string, fn func(ctx context.Context, tx Tx) error) error {
	err := s.write(ctx, f, fn)
	if err == nil && s.inFlight != nil {
		s.inFlight.end(id)
	}
	return err
}
