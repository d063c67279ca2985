package api_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/authbench/authbench/internal/pgtest"
	"github.com/authbench/authbench/server/embedded"
	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

// stores are the databases a test runs on: SQLite, and PostgreSQL when
// AUTHBENCH_POSTGRES_URL names a server (a schema of the test's own).
var stores = []struct {
	name string
	db   func(t *testing.T) string
}{
	{"sqlite", func(*testing.T) string { return "" }},
	{"postgres", func(t *testing.T) string { return pgtest.SchemaURL(t, "apitest_") }},
}

// withDB starts the server on database db ("" keeps the test's SQLite).
func withDB(db string) startOption {
	return func(o *embedded.Options) {
		if db != "" {
			o.DB = db
		}
	}
}

// hookRand is crypto/rand that calls hook, when set, before each read:
// the service reads it for the IDs it makes, so a test can act in the
// middle of a request.
type hookRand struct {
	mu   sync.Mutex
	hook func()
}

func (r *hookRand) Read(p []byte) (int, error) {
	r.mu.Lock()
	h := r.hook
	r.mu.Unlock()
	if h != nil {
		h()
	}
	return rand.Read(p)
}

func (r *hookRand) set(h func()) {
	r.mu.Lock()
	r.hook = h
	r.mu.Unlock()
}

// TestLoginBlockedMidway: support blocks the second factor (its element
// wiped) while a login with it is under way: after its proof was checked,
// before the login is written. The login ends with 403
// authenticator_blocked, as one begun after the block does, not with 404
// not_found: the person is told that the chip (or code device) is blocked.
// A login with an unknown factor is still 404 not_found.
func TestLoginBlockedMidway(t *testing.T) {
	factors := []struct {
		kind string // the kind, as authbench_verifier_checks_total labels it
		// add adds and activates the factor of alice; proof returns the
		// finish fields of a login ceremony with it.
		add func(s *server) (aid string, proof func(f service.FactorLogin) map[string]any)
	}{
		{"chip", func(s *server) (string, func(service.FactorLogin) map[string]any) {
			c := newChip(s.t, "chip-blocked-midway")
			ch := s.addChip("alice", supportToken, c)
			return ch.ID, func(f service.FactorLogin) map[string]any {
				assertion, err := servicetest.Assert(context.Background(), c, origin, f.PublicKey)
				if err != nil {
					s.t.Fatal(err)
				}
				return map[string]any{"credential": assertion}
			}
		}},
		{"code-display", func(s *server) (string, func(service.FactorLogin) map[string]any) {
			dev := servicetest.CodeDevice{Serial: "KV-MIDWAY", Secret: []byte("12345678901234567890")}
			doc, _ := servicetest.PSKC(pskcKey, dev)
			s.want(s.do("POST", "/v1/pskc", supportToken, doc, "application/pskc+xml"), 200, "")
			r := s.do("POST", "/v1/identities/alice/authenticators", supportToken, map[string]any{"kind": "code-display", "serial": dev.Serial})
			s.want(r, 201, "")
			var add service.AddResult
			r.decode(s.t, &add)
			aid := add.Authenticator.ID
			s.want(s.do("POST", "/v1/identities/alice/authenticators/"+aid+"/activate", supportToken,
				map[string]any{"code": dev.Code(s.clk.Now())}), 200, "")
			s.clk.Advance(30 * time.Second) // a code of a later step
			return aid, func(service.FactorLogin) map[string]any {
				return map[string]any{"code": dev.Code(s.clk.Now())}
			}
		}},
	}
	for _, st := range stores {
		for _, fc := range factors {
			t.Run(st.name+"/"+fc.kind, func(t *testing.T) {
				rnd := &hookRand{}
				s := start(t, withDB(st.db(t)), func(o *embedded.Options) { o.Rand = rnd })
				s.createIdentity("alice", "correct horse")
				aid, proof := fc.add(s)
				checks := func() float64 {
					return value(s.scrape(), "authbench_verifier_checks_total", "kind="+fc.kind)
				}

				f, r := s.factor("alice", "correct horse", aid)
				if f == nil {
					t.Fatalf("login: %d %s", r.status, r.raw)
				}
				fields := proof(*f)
				before := checks()
				blocked := false
				// The first identifier the service makes once it has
				// checked the proof (the session's) is where support
				// steps in.
				rnd.set(func() {
					if blocked || checks() == before {
						return
					}
					blocked = true
					s.want(s.do("POST", "/v1/identities/alice/authenticators/"+aid+"/block", supportToken, map[string]any{"reason": "lost"}), 200, "")
				})
				r = s.finish("alice", *f, fields)
				rnd.set(nil)
				if !blocked {
					t.Fatal("the factor was not blocked during the login")
				}
				s.want(r, 403, "authenticator_blocked")

				s.want(s.passwordLogin("alice", "correct horse", aid), 403, "authenticator_blocked")
				s.want(s.passwordLogin("alice", "correct horse", "chip-0000000000000000"), 404, "not_found")
			})
		}
	}
}
