package columns

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/authbench/authbench/server/domain"
	"github.com/authbench/authbench/server/store"
)

// col is a codec as the SQLite store's.
var col = Codec{Name: "sqlite"}

func scanAuthenticator(sc row) (domain.Authenticator, error) {
	var r AuthenticatorRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return domain.Authenticator{}, err
	}
	return col.Authenticator(&r)
}

func scanIdentity(sc row) (domain.Identity, error) {
	var r IdentityRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return domain.Identity{}, err
	}
	return col.Identity(&r)
}

func scanAudit(sc row) (store.AuditRecord, error) {
	var r AuditRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return store.AuditRecord{}, err
	}
	return col.Audit(&r)
}

// row is a scanner over fixed values, as the database would return them
// (string, int64, []byte or nil), with database/sql's conversions for the
// destinations the store uses.
type row []any

func (r row) Scan(dest ...any) error {
	if len(dest) != len(r) {
		return fmt.Errorf("row: %d columns, %d destinations", len(r), len(dest))
	}
	for i, d := range dest {
		v := r[i]
		var ok bool
		switch d := d.(type) {
		case *string:
			var s string
			s, ok = v.(string)
			*d = s
		case *int:
			var n int64
			n, ok = v.(int64)
			*d = int(n)
		case *int64:
			*d, ok = v.(int64)
		case *sql.NullInt64:
			ok = d.Scan(v) == nil
		case **int64:
			switch n := v.(type) {
			case nil:
				*d, ok = nil, true
			case int64:
				*d, ok = &n, true
			}
		case *[]byte:
			switch b := v.(type) {
			case nil:
				*d, ok = nil, true
			case []byte:
				*d, ok = append([]byte{}, b...), true
			}
		default:
			return fmt.Errorf("row: unsupported destination %T", d)
		}
		if !ok {
			return fmt.Errorf("row: column %d: cannot scan %T into %T", i, v, d)
		}
	}
	return nil
}

// nullable returns nil when the bit of mask for column i is clear.
func nullable(mask uint8, i int, v int64) any {
	if mask&(1<<i) == 0 {
		return nil
	}
	return v
}

// FuzzScanAuthenticator decodes arbitrary authenticator rows: no panic,
// ErrInvalid or a value that encodes back to exactly the row.
func FuzzScanAuthenticator(f *testing.F) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 1, time.UTC).UnixNano()
	f.Add("a-1", "id-1", "chip", "active", "S", "cred", "label", int64(0), int64(0), now, now, now, now, now, uint8(0x1f), "", "", int64(1))
	f.Add("a-2", "id-1", "code-display", "suspended", "KV", "", "", int64(3), int64(1), now, now, int64(0), now, int64(0), uint8(0x0b), "failures", "", int64(7))
	f.Add("a-3", "id-2", "password", "blocked", "", "", "", int64(0), int64(3), int64(math.MinInt64), now, now, now, int64(math.MaxInt64), uint8(0x11), "", "escalation", int64(math.MaxInt64))
	f.Add("", "", "abacus", "zombie", "", "", "", int64(-1), int64(-1), int64(0), int64(0), int64(0), int64(0), int64(0), uint8(0), "", "", int64(-1))
	f.Fuzz(func(t *testing.T, id, ident, kind, state, serial, cred, label string, failures, suspensions,
		created, activated, used, suspended, blocked int64, mask uint8, suspendReason, blockReason string, version int64) {
		r := row{id, ident, kind, state, serial, cred, label, failures, suspensions,
			nullable(mask, 0, created), nullable(mask, 1, activated), nullable(mask, 2, used), nullable(mask, 3, suspended),
			suspendReason, nullable(mask, 4, blocked), blockReason, version}
		a, err := scanAuthenticator(r)
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		args, err := col.AuthenticatorArgs(&a)
		if err != nil {
			t.Fatalf("a decoded authenticator does not encode: %v (%+v)", err, a)
		}
		if !reflect.DeepEqual([]any(r), args) {
			t.Fatalf("round trip:\n row  %#v\n args %#v", r, args)
		}
	})
}

// FuzzScanIdentity does the same for identity rows.
func FuzzScanIdentity(f *testing.F) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 1, time.UTC).UnixNano()
	f.Add("id-1", "active", "", now, "", "", "", now, uint8(0x2), int64(1))
	f.Add("id-2", "temporarily-blocked", "misuse", now, "support", "op-1", "", now, uint8(0x3), int64(2))
	f.Add("", "nope", "", int64(0), "", "", "", int64(0), uint8(0), int64(-5))
	f.Fuzz(func(t *testing.T, id, state, reason string, blockedAt int64, byKind, byID, byVia string, created int64, mask uint8, version int64) {
		r := row{id, state, reason, nullable(mask, 0, blockedAt), byKind, byID, byVia, nullable(mask, 1, created), version}
		v, err := scanIdentity(r)
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		args, err := col.IdentityArgs(&v)
		if err != nil {
			t.Fatalf("a decoded identity does not encode: %v (%+v)", err, v)
		}
		if !reflect.DeepEqual([]any(r), args) {
			t.Fatalf("round trip:\n row  %#v\n args %#v", r, args)
		}
	})
}

// FuzzScanAudit does the same for audit rows.
func FuzzScanAudit(f *testing.F) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 1, time.UTC).UnixNano()
	f.Add(int64(1), now, true, "identity.created", "id-1", "", make([]byte, 32), []byte{1, 2, 3}, []byte(`{"type":"identity.created"}`))
	f.Add(int64(-1), int64(0), false, "", "", "", []byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, seq, at int64, atSet bool, typ, ident, auth string, prev, hash, body []byte) {
		var atv any
		if atSet {
			atv = at
		}
		// The columns are NOT NULL: the database never returns nil here.
		r := row{seq, atv, typ, ident, auth, append([]byte{}, prev...), append([]byte{}, hash...), append([]byte{}, body...)}
		rec, err := scanAudit(r)
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		args, err := col.AuditArgs(&rec)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v (%+v)", err, rec)
		}
		if !reflect.DeepEqual([]any(r), args) {
			t.Fatalf("round trip:\n row  %#v\n args %#v", r, args)
		}
	})
}

// FuzzOTPParams decodes stored OTP parameters: ErrInvalid, or parameters
// that pass Check and convert back to the same integers.
func FuzzOTPParams(f *testing.F) {
	f.Add(int64(6), int64(30), int64(1))
	f.Add(int64(8), int64(60), int64(3))
	f.Add(int64(0), int64(0), int64(0))
	f.Add(int64(5), int64(-1), int64(4))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, digits, period, alg int64) {
		p, err := OTPParams(digits, period, alg)
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := p.Check(); err != nil {
			t.Fatalf("decoded %+v fails Check: %v", p, err)
		}
		if int64(p.Digits) != digits || int64(p.Period/time.Second) != period || int64(p.Algorithm) != alg {
			t.Fatalf("round trip: %d %d %d -> %+v", digits, period, alg, p)
		}
	})
}
