package domain

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/device"
)

// seeds adds every file matching pattern under the repository's testdata
// (when there is one) to the corpus of f.
func seeds(f *testing.F, pattern string, add func([]byte)) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "domain", pattern))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzParseState: the state parsers never panic, accept exactly the names
// of the states, and a parsed state prints back as the input.
func FuzzParseState(f *testing.F) {
	seeds(f, "states/*.txt", func(b []byte) { f.Add(strings.TrimSpace(string(b))) })
	for _, s := range States {
		f.Add(string(s))
	}
	f.Add(string(IdentityBlocked))
	f.Add("")
	f.Add("Blocked")
	f.Add("suspended\x00")
	f.Fuzz(func(t *testing.T, s string) {
		if st, err := ParseState(s); err == nil {
			if string(st) != s || !st.Valid() {
				t.Fatalf("ParseState(%q) = %q", s, st)
			}
		} else if st != "" || !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseState(%q) = %q, %v", s, st, err)
		}
		if st, err := ParseIdentityState(s); err == nil {
			if string(st) != s || !st.Valid() {
				t.Fatalf("ParseIdentityState(%q) = %q", s, st)
			}
		} else if st != "" || !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseIdentityState(%q) = %q, %v", s, st, err)
		}
	})
}

// FuzzLifecycle reads a program from the input (a policy byte, then
// operations of three bytes: what, on which authenticator, how many
// minutes later) and runs it against one identity, checking after every
// step that the rules hold: inputs never change, refusals are
// TransitionErrors (or ErrInvalid), blocked is terminal, every permanent
// block wipes and leaves a tombstone, quotas and revocations are never
// broken, counters stay within the policy, and nobody logs in while the
// identity or the authenticator is blocked.
func FuzzLifecycle(f *testing.F) {
	seeds(f, "lifecycle/*.bin", func(b []byte) { f.Add(b) })
	f.Add([]byte{0, 2, 0, 1, 2, 0, 1, 2, 0, 1})                      // three failures on the app
	f.Add([]byte{1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 5, 0, 90})            // suspend, then let it expire
	f.Add([]byte{2, 6, 2, 1, 12, 2, 1, 12, 8, 1})                    // block the code display, re-add it
	f.Add([]byte{3, 9, 0, 1, 10, 0, 1, 4, 0, 1, 10, 0, 1, 11, 0, 1}) // identity block and unblock
	f.Add([]byte{0, 0, 3, 1, 1, 3, 1, 6, 3, 1, 12, 3, 1, 0, 4, 1})   // chip: activate, block, re-add
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) == 0 {
			return
		}
		p := Policy{CountReplays: prog[0]&1 != 0}
		if prog[0]&2 != 0 {
			p.SuspensionExpiry = time.Hour
		}
		if prog[0]&4 != 0 {
			p.MaxFailures, p.MaxSuspensions, p.MaxApps = 1, 2, 1
		}
		if prog[0]&8 != 0 {
			p.ActivationDelay = 2 * time.Hour
		}
		prog = prog[1:]
		now := t0
		id := person()
		auths := []Authenticator{
			auth("app-1", device.KindApp, StateActive),
			auth("pw-1", device.KindPassword, StateActive),
			auth("kv-1", device.KindCodeDisplay, StateActive),
			auth("chip-1", device.KindChip, StatePending),
		}
		var tombs []Tombstone
		next := 0
		for ; len(prog) >= 3; prog = prog[3:] {
			op, which, mins := prog[0]%13, int(prog[1]), time.Duration(prog[2])*time.Minute
			now = now.Add(mins)
			i := which % len(auths)
			a := auths[i]
			before, idBefore := a, id
			other := auths[(i+1+which/len(auths))%len(auths)]
			var c Change
			var ic IdentityChange
			var err error
			identityOp, addOp := false, false
			switch op {
			case 0:
				c, err = p.Activate(id, a, Owner("id-1", other.ID), now)
			case 1:
				c, err = p.RecordSuccess(a, now)
			case 2:
				causes := []Cause{CauseWrongPIN, CauseWrongCode, CauseReplayedCode, CauseSignCount}
				c, err = p.RecordFailure(a, Failure{Cause: causes[which%len(causes)]}, now)
			case 3:
				c, err = p.Suspend(a, Support("op-1"), ReasonMisuse, now)
			case 4:
				c, err = p.Reactivate(id, a, Owner("id-1", other.ID), auths, now)
			case 5:
				c, err = p.Reactivate(id, a, Support("op-1"), nil, now)
			case 6:
				c, err = p.Block(a, Owner("id-1", other.ID), ReasonLost, now)
			case 7:
				c, err = p.Cancel(a, Owner("id-1", ""), now)
			case 8:
				c, err = p.Expire(a, now)
			case 9:
				identityOp = true
				ic, err = p.BlockIdentity(id, System("detector"), ReasonMisuse, now)
			case 10:
				identityOp = true
				ic, err = p.UnblockIdentity(id, Support("op-1"), "", now)
			case 11:
				err = p.CanLogin(id, a, now)
				if err == nil && (id.State != IdentityActive || a.State != StateActive && !p.expired(&a, now)) {
					t.Fatalf("login allowed: %+v %+v", id, a)
				}
				continue
			case 12:
				addOp = true
				next++
				kind := device.Kinds[which%len(device.Kinds)]
				ref := a.Ref // reuse a serial or credential now and then
				if which&16 != 0 {
					ref = Ref{Serial: "new-" + strconv.Itoa(next), CredentialID: "new-" + strconv.Itoa(next)}
				}
				by := Owner("id-1", other.ID)
				if which&32 != 0 {
					by = Support("op-1")
				}
				c, err = p.Add(id, auths, tombs, AddRequest{ID: "n" + strconv.Itoa(next), Kind: kind, Ref: ref}, by, now)
			}
			if a != before || id != idBefore {
				t.Fatalf("op %d changed its input", op)
			}
			if err != nil {
				var te *TransitionError
				if !errors.As(err, &te) && !errors.Is(err, ErrInvalid) {
					t.Fatalf("op %d: error %T %v", op, err, err)
				}
				if !strings.HasPrefix(err.Error(), "domain: ") {
					t.Fatalf("op %d: message %q", op, err)
				}
				continue
			}
			if identityOp {
				if ic.Identity.Version != id.Version+1 || len(ic.Events) != 1 || ic.Identity.State == id.State {
					t.Fatalf("identity op %d: %+v", op, ic)
				}
				id = ic.Identity
				continue
			}
			n := c.Authenticator
			if len(c.Events) == 0 {
				t.Fatalf("op %d: no audit event", op)
			}
			if addOp {
				if n.State != StatePending || n.Version != 1 {
					t.Fatalf("added %+v", n)
				}
				auths = append(auths, n)
				checkHolds(t, p, id, auths, tombs)
				continue
			}
			if a.State == StateBlocked {
				t.Fatalf("op %d changed a blocked authenticator: %+v", op, n)
			}
			if n.Version != a.Version+1 || n.ID != a.ID || n.Ref != a.Ref || n.Kind != a.Kind {
				t.Fatalf("op %d: %+v -> %+v", op, a, n)
			}
			if n.State == StateBlocked {
				if !c.WipeSecret || c.Tombstone == nil || c.Tombstone.Ref != a.Ref || c.Tombstone.AuthenticatorID != a.ID {
					t.Fatalf("op %d: block without wipe or tombstone: %+v", op, c)
				}
				tombs = append(tombs, *c.Tombstone)
			} else if c.WipeSecret != c.Remove || c.Tombstone != nil {
				t.Fatalf("op %d: effects %+v", op, c)
			}
			if c.Remove {
				if a.State != StatePending {
					t.Fatalf("op %d removed a %s authenticator", op, a.State)
				}
				auths = append(auths[:i], auths[i+1:]...)
			} else {
				auths[i] = n
			}
			if ms := p.maxSuspensions(); n.Suspensions > ms {
				t.Fatalf("%d suspensions, limit %d", n.Suspensions, ms)
			}
			if mf := p.maxFailures(); n.State == StateActive && n.Failures >= mf {
				t.Fatalf("active with %d failures, limit %d", n.Failures, mf)
			}
			if n.State == StateSuspended && (n.SuspendReason == "" || n.SuspendedAt.IsZero()) {
				t.Fatalf("suspended without reason or time: %+v", n)
			}
			if len(auths) == 0 {
				return
			}
		}
	})
}

// checkHolds fails when the identity's authenticators break a quota or use
// a revoked serial or credential.
func checkHolds(t *testing.T, p Policy, id Identity, auths []Authenticator, tombs []Tombstone) {
	t.Helper()
	held := map[string]int{}
	for _, a := range auths {
		if a.State == StateBlocked {
			continue
		}
		g := string(a.Kind)
		if isCodeDevice(a.Kind) {
			g = "code"
		}
		held[g]++
		if q := p.Quota(a.Kind); q >= 0 && held[g] > q {
			t.Fatalf("quota of %s broken: %d > %d", g, held[g], q)
		}
		for _, tb := range tombs {
			if a.CredentialID != "" && a.CredentialID == tb.CredentialID || isCodeDevice(a.Kind) && tb.RevokesSerial() && a.Serial == tb.Serial {
				t.Fatalf("%s uses what tombstone %+v revoked", a.ID, tb)
			}
		}
	}
}
