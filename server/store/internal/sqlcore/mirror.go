package sqlcore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
	"github.com/authbench/authbench/server/store/internal/columns"
)

// The mirror (Options.Mirror) holds the records a login reads — an
// identity's row, its authenticators and their security elements — in
// memory, exactly as the database has them, so that the reads of a login
// cost no statement. It is for a backend whose database only this process
// writes, through connections that report every row they change (SQLite:
// the file lock, and a pre-update hook on the write connection).
//
// What it holds of an identity is complete: the identity's row and every
// authenticator and element of it. It learns an identity in two ways:
//
//   - a write inserts the identity (nothing of it can exist before), or
//   - a read misses and loads the identity's records (mirrorLoad), and
//     keeps them unless a commit was applied meanwhile.
//
// The backend hands it the rows each committed transaction changed, in
// the order they were changed, after the commit and before the writes of
// the transaction return to their callers (Apply): an update or insert
// puts the row's new values, a delete drops it. So what a caller reads
// after its write returned includes that write, and an attempt ended after
// its outcome committed (writeEnding) is never counted without it.
//
// Why a load and a commit cannot leave an old row behind: a load keeps
// what it read only when no commit was applied between its start and its
// end (epoch). A commit whose rows the load did not see is applied after
// the load started; if it was applied before the load ended, the load is
// dropped; if after, Apply puts the new rows over what the load kept.
//
// It holds at most max identities and forgets some when it has more.
type Mirror struct {
	mu    sync.RWMutex
	ids   map[string]*heldIdentity
	auths map[string]string // authenticator ID → its identity, of the identities held
	epoch uint64            // commits applied
	max   int
	// perm maps a table's column order (as the backend reports its rows)
	// to the mirror's (mirrorCols): mirror column i is table column
	// perm[table][i].
	perm map[string][]int

	loads atomic.Int64
}

// heldIdentity is what the mirror holds of one identity: its row
// (mirrorCols["identities"]) and its authenticators by ID.
type heldIdentity struct {
	row   []any
	auths map[string]*heldAuth
	// dec is row decoded (Store.heldIdentity), made by the first read
	// after row was set and dropped with it.
	dec atomic.Pointer[decodedIdentity]
}

// decodedIdentity is a held identity's row as the store's records: the
// identity and the version of its authenticator set.
type decodedIdentity struct {
	v   domain.Identity
	set uint64
}

// heldAuth is one authenticator's row (mirrorCols["authenticators"]) and
// its element's (nil when it has none), from table elTable.
type heldAuth struct {
	row     []any
	el      []any
	elTable string
	// dec is row decoded (Store.heldAuth), made by the first read after
	// row was set and dropped with it.
	dec atomic.Pointer[domain.Authenticator]
}

// mirrorCols are the columns the mirror keeps of each table, in the order
// of the columns package's rows (the element tables: authenticator_id,
// then the columns of element.go's rows; a code device's OTP watermark
// is in its authenticator's row, after authCols: heldAuth.elementRow).
var mirrorCols = map[string]string{
	"identities":        identityCols + `, authenticators_version`,
	"authenticators":    authCols + `, drift, highest_step`,
	"chip_elements":     `authenticator_id, ` + chipCols,
	"code_elements":     `authenticator_id, ` + codeCols,
	"app_elements":      `authenticator_id, ` + appCols,
	"password_elements": `authenticator_id, ` + passwordCols,
}

// The positions of columns in the mirror's rows (the key of every table
// is at 0).
const (
	identityVersionCol = 9  // identities.authenticators_version
	authIdentityCol    = 1  // authenticators.identity_id
	authKindCol        = 2  // authenticators.kind
	authCreatedCol     = 9  // authenticators.created_at
	authRowCols        = 17 // the columns of authCols; the OTP watermark follows
	authDriftCol       = 17 // authenticators.drift
	authHighestCol     = 18 // authenticators.highest_step
)

// MirrorTables returns the tables the mirror keeps, each with the columns
// it needs of it: the backend reports the changes of these tables only.
func MirrorTables() map[string][]string {
	out := map[string][]string{}
	for t, cols := range mirrorCols {
		for c := range strings.SplitSeq(cols, ",") {
			out[t] = append(out[t], strings.TrimSpace(c))
		}
	}
	return out
}

// NewMirror returns an empty mirror that holds at most max identities
// (max <= 0: 65,536). tableCols are the columns of each table of
// MirrorTables in the order of the rows the backend reports (Apply).
func NewMirror(max int, tableCols map[string][]string) (*Mirror, error) {
	if max <= 0 {
		max = 1 << 16
	}
	m := &Mirror{ids: map[string]*heldIdentity{}, auths: map[string]string{}, max: max, perm: map[string][]int{}}
	for t, want := range MirrorTables() {
		have := tableCols[t]
		p := make([]int, len(want))
		for i, c := range want {
			p[i] = slices.Index(have, c)
			if p[i] < 0 {
				return nil, fmt.Errorf("mirror: table %s has no column %s", t, c)
			}
		}
		m.perm[t] = p
	}
	return m, nil
}

// ChangeOp is what a write did to a row.
type ChangeOp uint8

// The changes of a row.
const (
	RowInsert ChangeOp = iota + 1
	RowUpdate
	RowDelete
)

// RowChange is a row of a table of MirrorTables that a committed
// transaction changed: Old are its values before (an update or a delete)
// and New after (an insert or an update), in the table's column order.
// For a delete or update, Old need only reach the table's key column (the
// first of MirrorTables').
type RowChange struct {
	Table    string
	Op       ChangeOp
	Old, New []any
}

// Apply brings the mirror up to a committed transaction that changed the
// rows changes, in that order. The backend calls it after the commit and
// before the transaction's writes return.
func (m *Mirror) Apply(changes []RowChange) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.epoch++
	for i := range changes {
		if !m.apply(&changes[i]) {
			// Something the mirror cannot follow: it forgets
			// everything rather than answer wrong.
			m.forgetAll()
			return
		}
	}
}

// Forget drops all the mirror holds: the backend calls it when it cannot
// tell what a transaction changed.
func (m *Mirror) Forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.epoch++
	m.forgetAll()
}

func (m *Mirror) forgetAll() {
	clear(m.ids)
	clear(m.auths)
}

// apply applies one change; false means the mirror cannot follow it.
func (m *Mirror) apply(c *RowChange) bool {
	p := m.perm[c.Table]
	if p == nil {
		return true // not a table the mirror keeps
	}
	var row []any
	if c.Op != RowDelete {
		if row = permute(c.New, p); row == nil {
			return false
		}
	}
	var key string
	switch {
	case row != nil:
		key, _ = row[0].(string)
	case len(c.Old) > p[0]:
		key, _ = c.Old[p[0]].(string)
	default:
		return false
	}
	if c.Op == RowUpdate && len(c.Old) > p[0] && c.Old[p[0]] != row[0] {
		return false // a key changed: no statement of the core does that
	}
	switch c.Table {
	case "identities":
		switch c.Op {
		case RowInsert:
			m.drop(key)
			m.ids[key] = &heldIdentity{row: row, auths: map[string]*heldAuth{}}
			m.bound()
		case RowUpdate:
			if h := m.ids[key]; h != nil {
				h.row = row
				h.dec.Store(nil)
			}
		case RowDelete:
			m.drop(key)
		}
	case "authenticators":
		identity := m.auths[key]
		if row != nil {
			identity, _ = row[authIdentityCol].(string)
		}
		h := m.ids[identity]
		if h == nil {
			return true // an identity the mirror does not hold
		}
		switch c.Op {
		case RowInsert:
			h.auths[key] = &heldAuth{row: row}
			m.auths[key] = identity
		case RowUpdate:
			a := h.auths[key]
			if a == nil {
				m.drop(identity) // it should have held it: not complete
				return true
			}
			a.row = row
			a.dec.Store(nil)
		case RowDelete:
			delete(h.auths, key)
			delete(m.auths, key)
		}
	default: // an element table
		h := m.ids[m.auths[key]]
		if h == nil {
			return true
		}
		a := h.auths[key]
		if a == nil {
			return false
		}
		if c.Op == RowDelete {
			a.el, a.elTable = nil, ""
		} else {
			a.el, a.elTable = row, c.Table
		}
	}
	return true
}

// permute returns vals in the mirror's column order p, or nil when vals
// is too short.
func permute(vals []any, p []int) []any {
	out := make([]any, len(p))
	for i, j := range p {
		if j >= len(vals) {
			return nil
		}
		out[i] = vals[j]
	}
	return out
}

// drop forgets identity id.
func (m *Mirror) drop(id string) {
	h := m.ids[id]
	if h == nil {
		return
	}
	for a := range h.auths {
		delete(m.auths, a)
	}
	delete(m.ids, id)
}

// bound forgets identities while it holds more than max.
func (m *Mirror) bound() {
	for id := range m.ids {
		if len(m.ids) <= m.max {
			return
		}
		m.drop(id)
	}
}

// Loads returns how many times the mirror read an identity's records from
// the database so far.
func (m *Mirror) Loads() int64 { return m.loads.Load() }

// errNotHeld: the mirror cannot answer; the caller reads the database.
var errNotHeld = errors.New("not in the mirror")

// mirrorLoad reads the records of identity id from the database and keeps
// them unless a commit was applied meanwhile. Its statements run one
// after another on a read connection, each on the last committed state, so
// they may see successive commits; what one of them saw and the mirror
// did not apply yet is applied over it later (see Mirror), and an element
// whose authenticator the load did not see is left out until then. It
// returns ErrNoRows when there is no such identity.
func (s *Store) mirrorLoad(ctx context.Context, id string) error {
	m := s.mirror
	m.mu.RLock()
	epoch := m.epoch
	m.mu.RUnlock()
	m.loads.Add(1)
	h := &heldIdentity{auths: map[string]*heldAuth{}}
	err := s.read(ctx, func(ctx context.Context, tx Tx) error {
		rows, err := readRows(ctx, tx, s.q.mirrorIdentity, len(m.perm["identities"]), id)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return ErrNoRows
		}
		h.row = rows[0]
		auths, err := readRows(ctx, tx, s.q.mirrorAuths, len(m.perm["authenticators"]), id)
		if err != nil {
			return err
		}
		for _, r := range auths {
			k, _ := r[0].(string)
			h.auths[k] = &heldAuth{row: r}
		}
		for _, e := range s.q.mirrorElements {
			els, err := readRows(ctx, tx, e.q, len(m.perm[e.table]), id)
			if err != nil {
				return err
			}
			for _, r := range els {
				k, _ := r[0].(string)
				if a := h.auths[k]; a != nil {
					a.el, a.elTable = r, e.table
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.epoch != epoch {
		return errNotHeld // a commit came between: read again next time
	}
	m.drop(id)
	m.ids[id] = h
	for a := range h.auths {
		m.auths[a] = id
	}
	m.bound()
	return nil
}

// readRows runs q and returns its rows as values.
func readRows(ctx context.Context, tx Tx, q *Stmt, n int, args ...any) ([][]any, error) {
	rs, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out [][]any
	for rs.Next() {
		vals := make([]any, n)
		dest := make([]any, n)
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rs.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rs.Err()
}

// mirrored runs fn on what the mirror holds of identity id, loading it
// when it holds nothing of it. It returns errNotHeld when the mirror
// cannot answer (no mirror, a load that raced a commit), ErrNoRows when
// there is no such identity, or fn's error.
func (s *Store) mirrored(ctx context.Context, id string, fn func(h *heldIdentity) error) error {
	m := s.mirror
	if m == nil || s.closed != nil && s.closed() {
		return errNotHeld
	}
	for try := 0; ; try++ {
		m.mu.RLock()
		h := m.ids[id]
		if h != nil {
			err := fn(h)
			m.mu.RUnlock()
			return err
		}
		m.mu.RUnlock()
		if try > 0 {
			return errNotHeld
		}
		if err := s.mirrorLoad(ctx, id); err != nil {
			return err
		}
	}
}

// mirroredAuth is mirrored for the identity of authenticator id, when the
// mirror holds it; errNotHeld otherwise (the caller reads the database,
// and may load the identity it learns: mirrorLearn).
func (s *Store) mirroredAuth(id string, fn func(h *heldIdentity, a *heldAuth) error) error {
	m := s.mirror
	if m == nil || s.closed != nil && s.closed() {
		return errNotHeld
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	h := m.ids[m.auths[id]]
	if h == nil {
		return errNotHeld
	}
	a := h.auths[id]
	if a == nil {
		return ErrNoRows
	}
	return fn(h, a)
}

// mirrorLearn loads identity id after a read the mirror could not answer,
// so that the next is; it is best effort.
func (s *Store) mirrorLearn(ctx context.Context, id string) {
	if s.mirror == nil || id == "" {
		return
	}
	_ = s.mirrorLoad(ctx, id)
}

// The decoding of held rows into the store's records: the same codec as
// a row read from the database. A row is decoded once, by the first read
// after it was held, and the records are kept with it (they hold no
// slice or map, so every caller gets its own copy). The reads run under
// the mirror's read lock and Apply replaces a row and drops its records
// under the write lock, so a record kept always is its row's: a read
// that decoded the old row ended before the new one was put.

func (s *Store) heldIdentity(h *heldIdentity) (domain.Identity, uint64, error) {
	if d := h.dec.Load(); d != nil {
		return d.v, d.set, nil
	}
	var r columns.IdentityRow
	if err := assignRow(r.Dest(), h.row[:identityVersionCol]); err != nil {
		return domain.Identity{}, 0, err
	}
	v, err := s.col.Identity(&r)
	if err != nil {
		return domain.Identity{}, 0, err
	}
	var sv int64
	if err := assign(&sv, h.row[identityVersionCol]); err != nil {
		return domain.Identity{}, 0, err
	}
	set, err := s.col.FromI64(sv, "authenticator set version")
	if err != nil {
		return domain.Identity{}, 0, err
	}
	h.dec.Store(&decodedIdentity{v: v, set: set})
	return v, set, nil
}

func (s *Store) heldAuth(a *heldAuth) (domain.Authenticator, error) {
	if d := a.dec.Load(); d != nil {
		return *d, nil
	}
	var r columns.AuthenticatorRow
	if err := assignRow(r.Dest(), a.row[:authRowCols]); err != nil {
		return domain.Authenticator{}, err
	}
	x, err := s.col.Authenticator(&r)
	if err != nil {
		return domain.Authenticator{}, err
	}
	d := x
	a.dec.Store(&d)
	return x, nil
}

// assignElement assigns the values of a's element to dest, in the order
// of its statements (element.go's rows): a code device's, its row in
// code_elements with the OTP watermark of a's row (codeElementCols).
func (a *heldAuth) assignElement(dest []any) error {
	if a.elTable != "code_elements" || len(a.el) != 7 || len(a.row) <= authHighestCol {
		return assignRow(dest, a.el[1:])
	}
	if len(dest) != 8 {
		return fmt.Errorf("mirror: 8 values for %d columns", len(dest))
	}
	if err := assignRow(dest[:5], a.el[1:6]); err != nil {
		return err
	}
	if err := assign(dest[5], a.row[authDriftCol]); err != nil {
		return fmt.Errorf("mirror: column 5: %w", err)
	}
	if err := assign(dest[6], a.row[authHighestCol]); err != nil {
		return fmt.Errorf("mirror: column 6: %w", err)
	}
	if err := assign(dest[7], a.el[6]); err != nil {
		return fmt.Errorf("mirror: column 7: %w", err)
	}
	return nil
}

// kind is the authenticator's kind as stored.
func (a *heldAuth) kind() string {
	k, _ := a.row[authKindCol].(string)
	return k
}

// heldElement returns the element of a when it is of kind k (nil when a
// has none, or its kind is not k), as the statements authenticator-with-*
// find it; es is the scanner of kind k (elementScan).
func (s *Store) heldElement(a *heldAuth, k device.Kind, es *elementScanner) (*store.Element, error) {
	if a.el == nil || a.kind() != string(k) || es.table != a.elTable {
		return nil, nil
	}
	d, n := es.dest()
	if err := a.assignElement(d[:n]); err != nil {
		return nil, err
	}
	el, err := es.element(s)
	if err != nil {
		return nil, err
	}
	return &el, nil
}

// sortedAuths returns h's authenticators in the order of the statement
// identity-set: by created_at (NULL first), then ID.
func sortedAuths(h *heldIdentity) []*heldAuth {
	out := make([]*heldAuth, 0, len(h.auths))
	for _, a := range h.auths {
		out = append(out, a)
	}
	// A NULL time (no int64) sorts first, as in SQLite.
	created := func(a *heldAuth) (int64, int) {
		t, ok := a.row[authCreatedCol].(int64)
		if !ok {
			return 0, 0
		}
		return t, 1
	}
	id := func(a *heldAuth) string { k, _ := a.row[0].(string); return k }
	slices.SortFunc(out, func(x, y *heldAuth) int {
		cx, sx := created(x)
		cy, sy := created(y)
		return cmp.Or(cmp.Compare(sx, sy), cmp.Compare(cx, cy), strings.Compare(id(x), id(y)))
	})
	return out
}

// assignRow assigns vals to dest as database/sql's Scan would.
func assignRow(dest []any, vals []any) error {
	if len(dest) != len(vals) {
		return fmt.Errorf("mirror: %d values for %d columns", len(vals), len(dest))
	}
	for i := range dest {
		if err := assign(dest[i], vals[i]); err != nil {
			return fmt.Errorf("mirror: column %d: %w", i, err)
		}
	}
	return nil
}

// assign assigns the value v (int64, float64, string, []byte or nil, as
// SQLite stores it) to dest, for the destination types of the columns
// package's rows, as database/sql would; it refuses what Scan refuses.
func assign(dest, v any) error {
	switch d := dest.(type) {
	case *string:
		switch v := v.(type) {
		case string:
			*d = v
			return nil
		case []byte:
			*d = string(v)
			return nil
		}
	case **string:
		switch v := v.(type) {
		case nil:
			*d = nil
			return nil
		case string:
			*d = &v
			return nil
		case []byte:
			s := string(v)
			*d = &s
			return nil
		}
	case *int64:
		if v, ok := v.(int64); ok {
			*d = v
			return nil
		}
	case **int64:
		switch v := v.(type) {
		case nil:
			*d = nil
			return nil
		case int64:
			*d = &v
			return nil
		}
	case *[]byte:
		switch v := v.(type) {
		case nil:
			*d = nil
			return nil
		case []byte:
			*d = slices.Clone(v)
			return nil
		case string:
			*d = []byte(v)
			return nil
		}
	case *bool:
		if v, ok := v.(int64); ok && (v == 0 || v == 1) {
			*d = v == 1
			return nil
		}
	}
	// The types, not dest itself: a row whose destinations do not escape
	// (heldAuth's) stays on the stack.
	return fmt.Errorf("cannot assign %v to %v", reflect.TypeOf(v), reflect.TypeOf(dest))
}

// KeyColumn returns the position of table's key column (the first of
// MirrorTables') in the rows the backend reports.
func (m *Mirror) KeyColumn(table string) int { return m.perm[table][0] }
