package chip

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authbench/authbench/device/ctap2"
)

func TestSaveLoad(t *testing.T) {
	clk := newClock()
	a := testChip(t, Options{Now: clk.Now, Slots: 3})
	rk := mustMake(t, a, makeReq("example.dk", "alice", true))
	nrk := mustMake(t, a, makeReq("example.dk", "bob", false))
	mustAssert(t, a, getReq("example.dk", nrk.id), nrk.pub)
	var buf bytes.Buffer
	if err := a.Save(&buf); err != nil {
		t.Fatal(err)
	}
	saved := buf.String()
	if !strings.Contains(saved, "private keys") || !strings.Contains(saved, `"version": 1`) {
		t.Errorf("saved state lacks the warning or version:\n%s", saved)
	}
	b, err := Load(strings.NewReader(saved), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if b.Serial() != a.Serial() || b.AAGUID() != a.AAGUID() || !b.Certificate().Equal(a.Certificate()) {
		t.Error("identity changed")
	}
	var again bytes.Buffer
	if err := b.Save(&again); err != nil || again.String() != saved {
		t.Errorf("save after load differs (%v)", err)
	}
	// Same credentials, same counters, and the same next credential.
	_, ad := mustAssert(t, b, getReq("example.dk", nrk.id), nrk.pub)
	if ad.SignCount != 2 {
		t.Errorf("counter %d after load, want 2", ad.SignCount)
	}
	as, _ := mustAssert(t, b, getReq("example.dk"), rk.pub)
	if !bytes.Equal(as.User.ID, userID("alice")) {
		t.Error("resident user lost")
	}
	na := mustMake(t, a, makeReq("example.dk", "carol", false))
	nb := mustMake(t, b, makeReq("example.dk", "carol", false))
	if !bytes.Equal(na.id, nb.id) || !bytes.Equal(na.pub, nb.pub) {
		t.Error("the clone derives other credentials")
	}
	// The slot count travels with the state.
	mustMake(t, b, makeReq("example.dk", "dave", true))
	mustMake(t, b, makeReq("example.dk", "erin", true))
	if _, err := b.MakeCredential(testCtx(t), makeReq("example.dk", "fred", true)); !errors.Is(err, ctap2.ErrKeyStoreFull) {
		t.Errorf("4th resident in 3 slots: %v", err)
	}
}

// TestOpenClone: a chip kept in a file survives restarts; restoring an old
// copy of the file gives a cloned chip whose counter goes backwards.
func TestOpenClone(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "chip.json")
	opts := Options{Seed: testSeed("open"), Now: newClock().Now}
	open := func() *Chip {
		c, err := Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open()
	m := mustMake(t, c, makeReq("example.dk", "alice", false))
	serial := c.Serial()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open()
	if c.Serial() != serial {
		t.Error("serial changed across restarts")
	}
	if _, ad := mustAssert(t, c, getReq("example.dk", m.id), m.pub); ad.SignCount != 1 {
		t.Errorf("counter %d", ad.SignCount)
	}
	// Copy the chip as it is now (it saved itself after the assertion).
	snapshot, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for want := uint32(2); want <= 3; want++ {
		if _, ad := mustAssert(t, c, getReq("example.dk", m.id), m.pub); ad.SignCount != want {
			t.Errorf("counter %d, want %d", ad.SignCount, want)
		}
	}
	c.Close()
	c = open()
	if _, ad := mustAssert(t, c, getReq("example.dk", m.id), m.pub); ad.SignCount != 4 {
		t.Errorf("counter %d after restart, want 4", ad.SignCount)
	}
	c.Close()

	clonePath := filepath.Join(dir, "clone.json")
	if err := os.WriteFile(clonePath, snapshot, 0o600); err != nil {
		t.Fatal(err)
	}
	clone, err := Open(clonePath, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer clone.Close()
	if _, ad := mustAssert(t, clone, getReq("example.dk", m.id), m.pub); ad.SignCount != 2 {
		t.Errorf("clone counter %d, want 2 (backwards from 4)", ad.SignCount)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("temporary files left: %v", entries)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, %v", fi.Mode(), err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o600)
	if _, err := Open(bad, Options{}); err == nil {
		t.Error("Open of a broken file succeeded")
	}
	if _, err := Open(filepath.Join(dir, "missing", "chip.json"), Options{}); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

func TestLoadErrors(t *testing.T) {
	c := testChip(t, Options{Slots: 1})
	mustMake(t, c, makeReq("example.dk", "alice", true))
	mustMake(t, c, makeReq("example.dk", "bob", false))
	var buf bytes.Buffer
	if err := c.Save(&buf); err != nil {
		t.Fatal(err)
	}
	var good map[string]any
	if err := json.Unmarshal(buf.Bytes(), &good); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		json.Unmarshal(buf.Bytes(), &m)
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	cred := func(m map[string]any, i int) map[string]any {
		return m["credentials"].([]any)[i].(map[string]any)
	}
	for name, in := range map[string]string{
		"empty":            "",
		"not json":         "chip",
		"version 2":        edit(func(m map[string]any) { m["version"] = 2 }),
		"unknown field":    edit(func(m map[string]any) { m["pin"] = "1234" }),
		"no seed":          edit(func(m map[string]any) { delete(m, "seed") }),
		"short aaguid":     edit(func(m map[string]any) { m["aaguid"] = "AAAA" }),
		"zero slots":       edit(func(m map[string]any) { m["slots"] = 0 }),
		"bad att key":      edit(func(m map[string]any) { m["attestation_key"] = "AAAA" }),
		"bad cert":         edit(func(m map[string]any) { m["attestation_cert"] = "AAAA" }),
		"other att key":    edit(func(m map[string]any) { m["attestation_key"] = cred(m, 0)["key"] }),
		"bad cred key":     edit(func(m map[string]any) { cred(m, 0)["key"] = "AAAA" }),
		"duplicate id":     edit(func(m map[string]any) { cred(m, 1)["id"] = cred(m, 0)["id"] }),
		"seq order":        edit(func(m map[string]any) { cred(m, 1)["seq"] = 1 }),
		"seq beyond count": edit(func(m map[string]any) { m["credentials_created"] = 1 }),
		"rp hash mismatch": edit(func(m map[string]any) { cred(m, 0)["rp_id"] = "other.example" }),
		"resident no user": edit(func(m map[string]any) { delete(cred(m, 0), "user_id") }),
		"over slots":       edit(func(m map[string]any) { cred(m, 1)["resident"] = true; cred(m, 1)["user_id"] = "AQ==" }),
	} {
		if c, err := Load(strings.NewReader(in), Options{}); err == nil {
			c.Close()
			t.Errorf("%s: loaded", name)
		}
	}
	if c, err := Load(bytes.NewReader(buf.Bytes()), Options{}); err != nil {
		t.Errorf("unedited state: %v", err)
	} else {
		c.Close()
	}
}
