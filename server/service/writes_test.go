package service_test

import (
	"testing"

	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/store/sqlite"
)

// TestChipLifecycleWrites counts the durable writes (commits that sync the
// SQLite log) of each step of a chip's lifecycle: enroll, log in, block,
// enroll again; a login is one write.
func TestChipLifecycleWrites(t *testing.T) {
	e := newEnv(t)
	e.identity("alice")
	c := newChip(t, "chip-1", chipOpts())
	var last sqlite.WriteStats
	step := func(name string) (durable, commits int64) {
		w := e.st.Writes()
		durable, commits = w.Durable-last.Durable, w.Commits-last.Commits
		t.Logf("%s: %d durable writes, %d commits", name, durable, commits)
		last = w
		return durable, commits
	}
	step("set-up")
	a := must[service.AuthenticatorView](t)(e.addChip("alice", support, c, nil))
	total, _ := step("enroll")
	must[service.LoginResult](t)(e.loginChip("alice", a.ID, c))
	d, commits := step("login")
	total += d
	// The password's success and the reservations of both factors are
	// not writes of their own on SQLite (attempts in flight in memory; the
	// password's success in the login's one write).
	if commits != 1 || d != 1 {
		t.Errorf("a two-factor chip login made %d commits (%d durable), want 1 (1)", commits, d)
	}
	must[service.AuthenticatorView](t)(e.svc.Block(e.ctx, support, "alice", a.ID, service.BlockRequest{Reason: "lost"}))
	d, _ = step("block")
	total += d
	must[service.AuthenticatorView](t)(e.addChip("alice", support, c, nil))
	d, _ = step("re-add")
	total += d
	if total > 4 {
		t.Errorf("a chip's lifecycle made %d durable writes, want at most 4", total)
	}
}
