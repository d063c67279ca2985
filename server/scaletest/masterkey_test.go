package scaletest

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/secrets"
)

// TestMasterKeyRefusal is the operator's mistake of issue #10: with
// sealed secrets in the store (a code device's OTP secret, a PSKC import)
// and the master key file missing or wrong, `authbench serve` used to make
// a new key and start, and every code-device login then answered 500. Now
// the first start on an empty store makes the key; a start whose key file
// is missing, holds another key, or whose $AUTHBENCH_MASTER_KEY is another
// key exits non-zero before serving, naming the file (or variable) and
// what to do, and leaves the key file alone; with the right key back, the
// code device logs in.
func TestMasterKeyRefusal(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		db := b.open(t)
		c := newClusterFiles(t, b.name, db)
		ctx := testContext(t)

		// First start, empty store: the key file is made (mode 0600).
		s, err := startServer(t, c.cfg)
		if err != nil {
			if strings.Contains(err.Error(), "does not support") {
				t.Skip(err)
			}
			t.Fatal(err)
		}
		c.add(s)
		fi, err := os.Stat(c.cfg.MasterKey)
		fatal(t, err)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("the new master key file has mode %v", fi.Mode().Perm())
		}
		original, err := os.ReadFile(c.cfg.MasterKey)
		fatal(t, err)
		keys, err := secrets.ParseKeyring(original)
		fatal(t, err)

		// Sealed secrets: an enrolled code device and a waiting import.
		id := uniqueName(t, "mk-")
		const password = "the master key test's password"
		_, err = c.support(0).CreateIdentity(ctx, client.CreateIdentityRequest{ID: id, Password: password})
		fatal(t, err)
		dev, waiting := newCodeDevice(t), newCodeDevice(t)
		importCodeDevices(t, ctx, c, dev, waiting)
		aid := enrollCodeDevice(t, ctx, c, id, dev)
		s.stop()

		refused := func(what string, cfg serverConfig, want ...string) {
			t.Helper()
			s, err := startServer(t, cfg)
			if err == nil {
				c.add(s)
				t.Fatalf("%s: the server started", what)
			}
			msg := err.Error()
			if !strings.Contains(msg, "exited before listening (exit status 1)") {
				t.Fatalf("%s: %v, want exit status 1 before listening", what, err)
			}
			for _, w := range append(want, keys.Current(), "2 sealed secrets under key") {
				if !strings.Contains(msg, w) {
					t.Errorf("%s: the error does not say %q: %s", what, w, msg)
				}
			}
			t.Logf("%s: %s", what, tail(msg, 600))
		}

		// The key file is missing: no new key is made.
		fatal(t, os.Remove(c.cfg.MasterKey))
		refused("missing key file", c.cfg, c.cfg.MasterKey, "does not exist", "Restore the key file from your backup")
		if _, err := os.Stat(c.cfg.MasterKey); !os.IsNotExist(err) {
			t.Fatalf("a start without the key made a key file: %v", err)
		}

		// Another key in the file.
		other, err := secrets.GenerateKeyring(nil)
		fatal(t, err)
		fatal(t, other.WriteFile(c.cfg.MasterKey))
		refused("another key in the file", c.cfg, "--master-key "+c.cfg.MasterKey, "which it does not hold", other.Current(), "restore its key file from your backup")
		after, err := os.ReadFile(c.cfg.MasterKey)
		fatal(t, err)
		if k, err := secrets.ParseKeyring(after); err != nil || k.Current() != other.Current() {
			t.Fatalf("the refused start changed the key file: %v, %v", k, err)
		}

		// Another key in the environment, which overrides the file.
		fatal(t, os.WriteFile(c.cfg.MasterKey, original, 0o600))
		envCfg := c.cfg
		envCfg.Env = []string{secrets.EnvVar + "=" + hex.EncodeToString(random(t, 32))}
		refused("another key in $"+secrets.EnvVar, envCfg, "$"+secrets.EnvVar, "which it does not hold")

		// The right key: the password and the code device log in.
		s, err = startServer(t, c.cfg)
		fatal(t, err)
		c.add(s)
		cl := c.client(len(c.servers)-1, "")
		if _, err := client.LoginPasswordCode(ctx, cl, id, password, aid, dev.Code(time.Now())); err != nil {
			t.Fatalf("login with the password and the code device, with the right key: %v", err)
		}
	})
}
