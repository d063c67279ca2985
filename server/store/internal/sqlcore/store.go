package sqlcore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// Store implements store.Store over a Backend, except Close, which is the
// backend's.
type Store struct {
	b     Backend
	d     *Dialect
	q     *queries
	col   columns.Codec
	chain store.Chainer
	now   func() time.Time
	// inFlight, when set, holds the attempts in flight instead of the
	// attempts table (Options.InFlight).
	inFlight *InFlight
	// mirror, when set, answers the hot reads from memory
	// (Options.Mirror).
	mirror *Mirror
	// closed reports whether the backend was closed, when it can tell
	// (Closer): the mirror answers nothing then.
	closed func() bool
}

// Closer is a Backend that can tell whether it was closed.
type Closer interface {
	Closed() bool
}

// Options configure New.
type Options struct {
	// Chain links audit events (required).
	Chain store.Chainer
	// Now is the clock of the times the store records itself (wipes,
	// registrations); nil means time.Now.
	Now func() time.Time
	// InFlight, when set, holds the attempts in flight in memory instead
	// of the attempts table: for a backend whose database only this
	// process writes (see InFlight).
	InFlight *InFlight
	// Mirror, when set, holds the records a login reads in memory (see
	// Mirror): for a backend whose database only this process writes,
	// and that applies every committed change to it.
	Mirror *Mirror
}

// New returns the core over backend b in dialect d.
func New(b Backend, d *Dialect, opts Options) *Store {
	s := &Store{b: b, d: d, q: d.queries(), col: d.Codec, chain: opts.Chain, now: opts.Now, inFlight: opts.InFlight, mirror: opts.Mirror}
	if s.now == nil {
		s.now = time.Now
	}
	if c, ok := b.(Closer); ok {
		s.closed = c.Closed
	}
	return s
}

// Statements returns every statement of dialect d, for the backends'
// tests.
func Statements(d *Dialect) []*Stmt { return append([]*Stmt(nil), d.queries().all...) }

// ErrClosed is returned by calls made after a backend was closed; the
// backends wrap it with their name.
var ErrClosed = errors.New("the store is closed")

// SeqRace marks a unique violation on an audit sequence number: another
// writer appended to the chain between reading its head and inserting.
// The backends run the write again (Retryable).
type SeqRace struct{ Err error }

func (e *SeqRace) Error() string { return "audit append raced: " + e.Err.Error() }
func (e *SeqRace) Unwrap() error { return e.Err }

// Retryable reports whether the backend should run a write transaction
// that failed with err again: it lost a race for an audit sequence number,
// or the database aborted it (Class ClassRetry).
func (d *Dialect) Retryable(err error) bool {
	var race *SeqRace
	return errors.As(err, &race) || err != nil && d.Class(err) == ClassRetry
}

// errf returns an error prefixed with the dialect's name.
func (s *Store) errf(format string, args ...any) error {
	return fmt.Errorf(s.d.Name+": "+format, args...)
}

// dbErr turns a database error into one wrapping the store sentinel it
// means, with what (e.g. "authenticator a-1") in the message. Errors that
// already carry a store sentinel, context errors, ErrClosed and errors the
// backend retries pass unchanged.
func (s *Store) dbErr(err error, what string) error {
	if err == nil {
		return nil
	}
	switch s.d.Class(err) {
	case ClassUnique:
		return s.errf("%s: %w", what, store.ErrDuplicate)
	case ClassForeignKey:
		return s.errf("%s: %w (it refers to a record that does not exist)", what, store.ErrNotFound)
	case ClassInvalid:
		return s.errf("%s: %w: %v", what, store.ErrInvalid, err)
	case ClassRetry:
		return err
	}
	if errors.Is(err, ErrNoRows) {
		return s.errf("%s: %w", what, store.ErrNotFound)
	}
	var race *SeqRace
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrClosed) ||
		errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrDuplicate) ||
		errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrExhausted) || errors.Is(err, store.ErrSpent) || errors.As(err, &race) {
		return err
	}
	return s.errf("%s: %w", what, err)
}

// execLater runs q in tx, whose result the caller does not read: later,
// with the next statement, where tx can (Later), else now. wrap makes the
// error of q (s.wrapAs for dbErr's).
func (s *Store) execLater(ctx context.Context, tx Tx, q *Stmt, wrap func(error) error, args ...any) error {
	if l, ok := tx.(Later); ok {
		l.ExecLater(ctx, q, wrap, args...)
		return nil
	}
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return wrap(err)
	}
	return nil
}

// execCheck runs q in tx and returns the error check makes of the rows it
// changed and its error: later, with the next statement, where tx can
// (Later), else now. check runs no statement.
func (s *Store) execCheck(ctx context.Context, tx Tx, q *Stmt, check func(n int64, err error) error, args ...any) error {
	if l, ok := tx.(Later); ok {
		l.ExecCheckLater(ctx, q, check, args...)
		return nil
	}
	return check(tx.Exec(ctx, q, args...))
}

// queryLater runs q, which returns at most one row, in tx and returns the
// error scan makes of it: later, with the next statement, where tx can
// (Later), else now. scan runs no statement.
func (s *Store) queryLater(ctx context.Context, tx Tx, q *Stmt, scan func(Row) error, args ...any) error {
	if l, ok := tx.(Later); ok {
		l.QueryRowLater(ctx, q, scan, args...)
		return nil
	}
	return scan(tx.QueryRow(ctx, q, args...))
}

// wrapAs returns a function that makes a database error as dbErr does,
// what being what+name (joined only for an error).
func (s *Store) wrapAs(what, name string) func(error) error {
	return func(err error) error { return s.dbErr(err, what+name) }
}

// read runs fn on a read connection.
func (s *Store) read(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	return s.b.Read(ctx, fn)
}

// readRow runs q, which returns at most one row, on a read connection and
// converts the row with scan; what names the read in an error (an error
// wrapping store.ErrNotFound when there is no row).
func readRow[T any](ctx context.Context, s *Store, what string, scan func(Row) (T, error), q *Stmt, args ...any) (T, error) {
	var v T
	err := s.read(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		v, err = scan(tx.QueryRow(ctx, q, args...))
		return err
	})
	if err != nil {
		var zero T
		return zero, s.dbErr(err, what)
	}
	return v, nil
}

// write runs fn in a write transaction with flags f. A versioned write
// that changed no row (a *staleRecord, checked late) is explained once the
// transaction is rolled back: the record is gone (store.ErrNotFound) or at
// another version (store.ErrConflict).
func (s *Store) write(ctx context.Context, f Flags, fn func(ctx context.Context, tx Tx) error) error {
	err := s.b.Write(ctx, f, fn)
	var st *staleRecord
	if errors.As(err, &st) {
		return s.read(ctx, func(ctx context.Context, tx Tx) error {
			return s.explainStale(ctx, tx, st)
		})
	}
	return err
}

// exec runs one statement as a write of its own and returns the number of
// rows it changed; the error is the database's, unwrapped.
func (s *Store) exec(ctx context.Context, f Flags, q *Stmt, args ...any) (int64, error) {
	var n int64
	err := s.write(ctx, f|Single, func(ctx context.Context, tx Tx) error {
		var err error
		n, err = tx.Exec(ctx, q, args...)
		return err
	})
	return n, err
}

func isCodeDevice(k device.Kind) bool {
	return k == device.KindCodeDisplay || k == device.KindAudioCodeReader
}

// Plan is the query plan of one statement (Store.QueryPlans).
type Plan struct {
	Name, SQL string
	// Hot marks a statement on a request path.
	Hot bool
	// Text is the plan as the database prints it.
	Text string
	// Scans are the tables (or whole indexes) it reads in full; a hot
	// statement should have none.
	Scans []string
}

// QueryPlans returns the plans of the statements, as the backend explains
// them.
func (s *Store) QueryPlans(ctx context.Context) ([]Plan, error) {
	var out []Plan
	for _, q := range s.q.all {
		text, scans, err := s.b.Explain(ctx, q)
		if err != nil {
			return nil, s.errf("explain %s: %w", q.Name, err)
		}
		out = append(out, Plan{Name: q.Name, SQL: q.SQL, Hot: q.Hot, Text: text, Scans: scans})
	}
	return out, nil
}
