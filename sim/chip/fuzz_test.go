package chip

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/device/u2f"
)

// Fuzz seeds live in testdata/chip/{ctap2,u2f}/*.hex: hex digits, with
// whitespace and #-comment lines ignored. TestFuzzSeeds -update rewrites them
// from the requests below.
const seedDir = "../../testdata/chip"

var (
	fuzzStateOnce sync.Once
	fuzzState     []byte
	fuzzRK        []byte // resident credential for example.dk, user alice
	fuzzKH        []byte // U2F key handle for application SHA-256("example.dk")
)

// fuzzTemplate makes, once, the saved state every fuzz input starts from: a
// chip with a resident credential and a U2F registration.
func fuzzTemplate(t testing.TB) []byte {
	fuzzStateOnce.Do(func() {
		c, err := New(Options{Seed: testSeed("fuzz")})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx := context.Background()
		att, err := c.MakeCredential(ctx, makeReq("example.dk", "alice", true))
		if err != nil {
			t.Fatal(err)
		}
		ad, _ := ctap2.ParseAuthData(att.AuthData)
		fuzzRK = ad.AttestedCredential.CredentialID
		reg, err := c.Register(ctx, &u2f.RegisterRequest{Challenge: hash("c"), Application: hash("example.dk")})
		if err != nil {
			t.Fatal(err)
		}
		fuzzKH = reg.KeyHandle
		var buf bytes.Buffer
		if err := c.Save(&buf); err != nil {
			t.Fatal(err)
		}
		fuzzState = buf.Bytes()
	})
	if fuzzState == nil {
		t.Fatal("no fuzz template")
	}
	return fuzzState
}

// fuzzChip loads a fresh copy of the template with a virtual clock.
func fuzzChip(t testing.TB) *Chip {
	c, err := Load(bytes.NewReader(fuzzTemplate(t)), Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func seedRequests(t testing.TB) (ctap, u2fReqs map[string][]byte) {
	fuzzTemplate(t)
	enc := func(cmd byte, v any) []byte {
		b, err := ctap2.EncodeRequest(cmd, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	exclude := makeReq("example.dk", "bob", false)
	exclude.ExcludeList = []ctap2.CredentialDescriptor{{Type: "public-key", ID: fuzzRK}}
	noUP := getReq("example.dk", fuzzKH)
	noUP.Options = map[string]bool{"up": false}
	ctap = map[string][]byte{
		"getinfo":                {ctap2.CmdGetInfo},
		"makecredential":         enc(ctap2.CmdMakeCredential, makeReq("example.dk", "bob", false)),
		"makecredential_rk":      enc(ctap2.CmdMakeCredential, makeReq("example.dk", "bob", true)),
		"makecredential_exclude": enc(ctap2.CmdMakeCredential, exclude),
		"getassertion_discover":  enc(ctap2.CmdGetAssertion, getReq("example.dk")),
		"getassertion_allow":     enc(ctap2.CmdGetAssertion, getReq("example.dk", fuzzRK)),
		"getassertion_u2f_noup":  enc(ctap2.CmdGetAssertion, noUP),
		"getnextassertion":       {ctap2.CmdGetNextAssertion},
		"reset":                  {ctap2.CmdReset},
		"selection":              {ctap2.CmdSelection},
		"clientpin":              {ctap2.CmdClientPIN, 0xa1, 0x01, 0x01},
	}
	cmd := func(c *apdu.Command) []byte {
		b, err := c.EncodeExtended()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	auth := func(control byte, kh []byte) []byte {
		c, err := (&u2f.AuthenticateRequest{Control: control, Challenge: hash("c"), Application: hash("example.dk"), KeyHandle: kh}).Command()
		if err != nil {
			t.Fatal(err)
		}
		return cmd(c)
	}
	u2fReqs = map[string][]byte{
		"version":           cmd(&apdu.Command{INS: u2f.InsVersion, Ne: apdu.MaxExtendedNe}),
		"register":          cmd((&u2f.RegisterRequest{Challenge: hash("c"), Application: hash("example.dk")}).Command()),
		"authenticate":      auth(u2f.ControlEnforcePresence, fuzzKH),
		"authenticate_noup": auth(u2f.ControlDontEnforcePresence, fuzzKH),
		"check_ctap2_cred":  auth(u2f.ControlCheckOnly, fuzzRK),
		"check_unknown":     auth(u2f.ControlCheckOnly, []byte{1, 2, 3}),
	}
	return ctap, u2fReqs
}

// TestFuzzSeeds writes the seed files with -update, and otherwise checks
// that they are still what the requests above encode to.
func TestFuzzSeeds(t *testing.T) {
	ctap, u2fReqs := seedRequests(t)
	for dir, reqs := range map[string]map[string][]byte{"ctap2": ctap, "u2f": u2fReqs} {
		for name, b := range reqs {
			fn := filepath.Join(seedDir, dir, name+".hex")
			if *update {
				os.MkdirAll(filepath.Dir(fn), 0o755)
				text := fmt.Sprintf("# sim/chip fuzz seed: %s request %q to the chip of seed \"fuzz\"\n%s\n", dir, name, hex.EncodeToString(b))
				if err := os.WriteFile(fn, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := readHex(fn)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b) {
				t.Errorf("%s is stale; run with -update", fn)
			}
		}
	}
}

func readHex(fn string) ([]byte, error) {
	raw, err := os.ReadFile(fn)
	if err != nil {
		return nil, err
	}
	var sb strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(sb.String())
}

func addSeeds(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join(seedDir, dir, "*.hex"))
	sort.Strings(files)
	if len(files) == 0 {
		f.Fatalf("no seeds in %s/%s", seedDir, dir)
	}
	for _, fn := range files {
		b, err := readHex(fn)
		if err != nil {
			f.Fatalf("%s: %v", fn, err)
		}
		f.Add(b)
	}
}

// checkState verifies the chip's invariants.
func checkState(t testing.TB, c *Chip) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	if len(st.creds) != len(st.credByID) {
		t.Fatalf("%d credentials, %d in the index", len(st.creds), len(st.credByID))
	}
	var last uint64
	for _, cr := range st.creds {
		if st.credByID[string(cr.id)] != cr || cr.seq <= last || cr.seq > st.created {
			t.Fatalf("credential %x out of place", cr.id)
		}
		last = cr.seq
		if cr.resident != (cr.user != nil) || cr.rpID != "" && ctap2.RPIDHash(cr.rpID) != cr.rpIDHash {
			t.Fatalf("credential %x inconsistent", cr.id)
		}
	}
	if st.residentCount() > st.slots {
		t.Fatalf("%d resident credentials in %d slots", st.residentCount(), st.slots)
	}
	if _, err := decodeState(must(c.encodeLocked())); err != nil {
		t.Fatalf("state does not load back: %v", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzServeCTAP2(f *testing.F) {
	addSeeds(f, "ctap2")
	f.Add([]byte{})
	f.Add([]byte{0x01, 0xa0})
	f.Add([]byte{0x02, 0xff})
	f.Fuzz(func(t *testing.T, req []byte) {
		c := fuzzChip(t)
		defer c.Close()
		resp := c.ServeCTAP2(context.Background(), req)
		if len(resp) == 0 {
			t.Fatal("empty answer")
		}
		if resp[0] == ctap2.CodeOK && len(req) > 0 {
			var err error
			switch req[0] {
			case ctap2.CmdMakeCredential:
				_, err = ctap2.DecodeAttestation(resp[1:])
			case ctap2.CmdGetAssertion, ctap2.CmdGetNextAssertion:
				_, err = ctap2.DecodeAssertion(resp[1:])
			case ctap2.CmdGetInfo:
				_, err = ctap2.DecodeInfo(resp[1:])
			}
			if err != nil {
				t.Fatalf("answer to %02X does not decode: %v", req[0], err)
			}
		}
		checkState(t, c)
		if info := c.ServeCTAP2(context.Background(), []byte{ctap2.CmdGetInfo}); info[0] != ctap2.CodeOK {
			t.Fatalf("getInfo after the input: %02X", info[0])
		}
	})
}

func FuzzServeU2F(f *testing.F) {
	addSeeds(f, "u2f")
	f.Add([]byte{})
	f.Add([]byte{0x00, 0x02, 0x07, 0x00})
	f.Fuzz(func(t *testing.T, req []byte) {
		c := fuzzChip(t)
		defer c.Close()
		resp := c.ServeU2F(context.Background(), req)
		if len(resp) < 2 {
			t.Fatalf("answer % X has no status word", resp)
		}
		checkState(t, c)
	})
}
