package scaletest

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/secrets"
	"github.com/authbench/authbench/sim/app"
)

// TestNoPlaintextSecretInPostgres enrolls a password, an app (PIN) and a
// code device (its OTP secret imported by PSKC) through a server on
// PostgreSQL, logs in with each, and then reads every row of every table
// of the database, as the database returns it (SELECT *, raw values) and
// as text (the row cast to text): none holds the password, the PIN, the
// OTP secret (raw, hex, base64 or base32), a session token or the support
// token (DESIGN §1: verifiers are argon2id, OTP secrets are encrypted at
// rest).
func TestNoPlaintextSecretInPostgres(t *testing.T) {
	t.Parallel()
	db := freshPostgres(t)
	c := newCluster(t, "postgres", db, 1)
	ctx := testContext(t)
	sup := c.support(0)

	id := uniqueName(t, "secrets-")
	password := "plaintext probe " + hex.EncodeToString(random(t, 12))
	_, err := sup.CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: password})
	fatal(t, err)

	pin := randomPIN(t)
	phone, err := app.New(app.Options{Seed: random(t, 32), PIN: pin})
	fatal(t, err)
	a, err := client.EnrollApp(ctx, sup, id, "phone", phone, pin)
	fatal(t, err)

	dev := newCodeDevice(t)
	importCodeDevices(t, ctx, c, dev)
	codeID := enrollCodeDevice(t, ctx, c, id, dev)

	var sessions []string
	s, err := client.LoginApp(ctx, c.anon(0), id, a.ID, phone, pin)
	fatal(t, err)
	sessions = append(sessions, s.Token)
	s, err = client.LoginPasswordCode(ctx, c.anon(0), id, password, codeID, dev.Code(time.Now()))
	fatal(t, err)
	sessions = append(sessions, s.Token)

	dump := dumpDatabase(t, ctx, db)
	var all [][]byte
	for _, v := range dump {
		all = append(all, v.value)
	}
	// The dump sees what was enrolled, or finding nothing proves nothing.
	for _, seen := range []string{id, dev.Serial} {
		if !bytes.Contains(bytes.Join(all, nil), []byte(seen)) {
			t.Fatalf("the dump of %d values does not contain %q: it does not read the server's tables", len(dump), seen)
		}
	}

	needles := map[string][]byte{"password": []byte(password), "support token": []byte(c.token)}
	for i, tok := range sessions {
		needles[fmt.Sprintf("session token %d", i+1)] = []byte(tok)
	}
	for name, form := range secretForms(dev.Secret) {
		needles["OTP secret ("+name+")"] = form
	}
	for _, v := range dump {
		for name, n := range needles {
			if bytes.Contains(v.value, n) {
				t.Errorf("%s holds the %s in plain: %s", v.where, name, excerpt(v.value, n))
			}
		}
		if i := pinAt(v.value, pin); i >= 0 {
			t.Errorf("%s holds the PIN in plain: %s", v.where, excerpt(v.value[i:], []byte(pin)))
		}
	}
	t.Logf("%d values in the database checked for the password, the PIN, %d forms of the OTP secret, %d session tokens and the support token",
		len(dump), len(secretForms(dev.Secret)), len(sessions))
}

// randomPIN returns a random 6-digit PIN that the server takes (not too
// easy to guess).
func randomPIN(t *testing.T) string {
	for {
		b := random(t, 4)
		pin := fmt.Sprintf("%06d", (uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]))%1_000_000)
		if secrets.CheckPIN(pin) == nil {
			return pin
		}
	}
}

// secretForms returns the encodings a careless store would keep a secret
// in.
func secretForms(secret []byte) map[string][]byte {
	b32 := []byte(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret))
	return map[string][]byte{
		"raw":         secret,
		"hex":         []byte(hex.EncodeToString(secret)),
		"HEX":         bytes.ToUpper([]byte(hex.EncodeToString(secret))),
		"base64":      []byte(base64.RawStdEncoding.EncodeToString(secret)),
		"base64url":   []byte(base64.RawURLEncoding.EncodeToString(secret)),
		"base32":      b32,
		"base32lower": bytes.ToLower(b32),
	}
}

// pinAt returns the index of the PIN in v where it stands on its own (not
// inside a longer run of hex digits or letters, where six given digits
// turn up by chance), or -1.
func pinAt(v []byte, pin string) int {
	off := 0
	for {
		i := bytes.Index(v[off:], []byte(pin))
		if i < 0 {
			return -1
		}
		i += off
		j := i + len(pin)
		if (i == 0 || !isAlnum(v[i-1])) && (j == len(v) || !isAlnum(v[j])) {
			return i
		}
		off = i + 1
	}
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// excerpt shows where needle sits in v.
func excerpt(v, needle []byte) string {
	i := bytes.Index(v, needle)
	if i < 0 {
		i = 0
	}
	lo, hi := max(0, i-40), min(len(v), i+len(needle)+40)
	return fmt.Sprintf("%q", v[lo:hi])
}

// dumpedValue is one value read from the database.
type dumpedValue struct {
	where string // schema.table, column or "row as text", row number
	value []byte
}

// dumpDatabase reads every row of every table of the database at url, in
// every schema but PostgreSQL's own: each column's value as the server
// sends it (SELECT *, raw bytes) and each row cast to text.
func dumpDatabase(t *testing.T, ctx context.Context, url string) []dumpedValue {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	fatal(t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1, 2`)
	fatal(t, err)
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgx.Identifier, error) {
		var schema, name string
		err := r.Scan(&schema, &name)
		return pgx.Identifier{schema, name}, err
	})
	fatal(t, err)
	if len(tables) == 0 {
		t.Fatal("the server's database has no tables")
	}
	var out []dumpedValue
	for _, tbl := range tables {
		name := tbl.Sanitize()
		rows, err := conn.Query(ctx, "SELECT * FROM "+name)
		fatal(t, err)
		for n := 0; rows.Next(); n++ {
			for i, raw := range rows.RawValues() {
				col := rows.FieldDescriptions()[i].Name
				out = append(out, dumpedValue{fmt.Sprintf("%s.%s (row %d)", name, col, n), bytes.Clone(raw)})
			}
		}
		fatal(t, rows.Err())
		rows, err = conn.Query(ctx, "SELECT t::text FROM "+name+" AS t")
		fatal(t, err)
		for n := 0; rows.Next(); n++ {
			var s string
			fatal(t, rows.Scan(&s))
			out = append(out, dumpedValue{fmt.Sprintf("%s (row %d as text)", name, n), []byte(s)})
		}
		fatal(t, rows.Err())
	}
	return out
}
