package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/client"
	"github.com/authbench/authbench/server/service/servicetest"
)

// TestServePSKCPlaintextSetting: serve refuses PSKC secrets in the clear,
// saying which setting takes them, unless --pskc-allow-plaintext, its
// environment variable or its key in the --config file allows them.
func TestServePSKCPlaintextSetting(t *testing.T) {
	for _, tt := range []struct {
		name  string
		args  []string
		env   string
		cfg   string
		allow bool
	}{
		{name: "default"},
		{name: "flag", args: []string{"--pskc-allow-plaintext"}, allow: true},
		{name: "environment", env: "true", allow: true},
		{name: "config file", cfg: `{"pskc-allow-plaintext": true}`, allow: true},
		{name: "flag off over the file", cfg: `{"pskc-allow-plaintext": true}`, args: []string{"--pskc-allow-plaintext=false"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append(serveArgs(dir), tt.args...)
			if tt.cfg != "" {
				cfg := filepath.Join(dir, "serve.json")
				if err := os.WriteFile(cfg, []byte(tt.cfg), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", cfg)
			}
			if tt.env != "" {
				t.Setenv("AUTHBENCH_PSKC_ALLOW_PLAINTEXT", tt.env)
			}
			url, stop, stderr := startServe(t, args...)
			c, err := client.New(url, client.Options{Token: supportToken(t, filepath.Join(dir, "tokens"))})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			dev := servicetest.CodeDevice{Serial: "KV-PLAIN-1", Secret: []byte("12345678901234567890")}
			res, err := c.ImportPSKC(context.Background(), servicetest.PlainPSKC(dev))
			var ae *client.APIError
			switch {
			case tt.allow && (err != nil || res.Imported != 1):
				t.Errorf("plaintext allowed, but the import gave %+v, %v", res, err)
			case !tt.allow && (!errors.As(err, &ae) || ae.Code != "pskc_invalid" || !strings.Contains(ae.Message, "--pskc-allow-plaintext")):
				t.Errorf("plaintext refused by default, but the import gave %+v, %v", res, err)
			}
			stop()
			if warned := strings.Contains(stderr.String(), "secrets in the clear are accepted"); warned != tt.allow {
				t.Errorf("warning logged: %v, want %v:\n%s", warned, tt.allow, stderr)
			}
		})
	}
}
