package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"testing"

	"github.com/authbench/authbench/server/store/internal/sqlcore"
)

type namedString string

type namedInt int32

// TestScanAsDatabaseSQL: a row scanned by the store's connection (which
// runs statements on the driver's connection, not through database/sql)
// gives every destination the core may use what database/sql's Scan gives
// it, and fails where database/sql fails.
func TestScanAsDatabaseSQL(t *testing.T) {
	ctx := context.Background()
	s := openChained(t, "")
	exprs := []string{"NULL", "0", "1", "-7", "9223372036854775807", "1.5", "'text'", "''", "'42'", "X'00ff'", "X''", "'true'"}
	dests := []func() any{
		func() any { return new(string) },
		func() any { return new([]byte) },
		func() any { return new(int64) },
		func() any { return new(*int64) },
		func() any { return new(int) },
		func() any { return new(bool) },
		func() any { return new(any) },
		func() any { return new(float64) },
		func() any { return new(namedString) },
		func() any { return new(namedInt) },
		func() any { return new(*string) },
		func() any { return new(sql.NullString) },
		func() any { return new(sql.NullInt64) },
	}
	for _, e := range exprs {
		q := sqlcore.NewStmt("scan "+e, "SELECT "+e+" WHERE ? = 1", false)
		for _, mk := range dests {
			want, got := mk(), mk()
			name := fmt.Sprintf("%s into %T", e, want)
			err := s.Read(ctx, func(ctx context.Context, tx sqlcore.Tx) error {
				c := tx.(*conn)
				wantErr := c.c.QueryRowContext(ctx, q.SQL, int64(1)).Scan(want)
				gotErr := tx.QueryRow(ctx, q, 1).Scan(got)
				if (wantErr == nil) != (gotErr == nil) {
					t.Errorf("%s: error %v, database/sql's %v", name, gotErr, wantErr)
					return nil
				}
				if wantErr == nil && !reflect.DeepEqual(got, want) {
					t.Errorf("%s: %#v, database/sql's %#v", name, reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem())
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestArgsAsDatabaseSQL: an argument bound by the store's connection is
// stored as database/sql would store it.
func TestArgsAsDatabaseSQL(t *testing.T) {
	ctx := context.Background()
	s := openChained(t, "")
	i64, str := int64(5), "s"
	var nilI64 *int64
	args := []any{nil, "x", "", int64(-3), 7, int32(8), uint16(9), true, false, 2.5, []byte{1, 0, 2}, []byte{}, []byte(nil),
		&i64, nilI64, &str, namedString("n"), namedInt(-4)}
	q := sqlcore.NewStmt("args", "SELECT typeof(?1), quote(?1)", false)
	for _, a := range args {
		err := s.Read(ctx, func(ctx context.Context, tx sqlcore.Tx) error {
			c := tx.(*conn)
			var wt, wq, gt, gq string
			if err := c.c.QueryRowContext(ctx, q.SQL, a).Scan(&wt, &wq); err != nil {
				return fmt.Errorf("database/sql, %T %v: %w", a, a, err)
			}
			if err := tx.QueryRow(ctx, q, a).Scan(&gt, &gq); err != nil {
				return fmt.Errorf("%T %v: %w", a, a, err)
			}
			if gt != wt || gq != wq {
				t.Errorf("%T %v is bound as %s %s, by database/sql as %s %s", a, a, gt, gq, wt, wq)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
