package api_test

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authbench/authbench/server/service"
	"github.com/authbench/authbench/server/service/servicetest"
)

// No secret (OTP secret, PIN, password, session or support token) appears
// in the SQLite files, in the debug log, or in any API response (except
// the session token in the one login answer that issues it).
func TestNoSecretsLeak(t *testing.T) {
	s := start(t)
	const (
		pw  = "Tr0ub4dor&3-horse-battery"
		pin = "739251"
	)
	otpSecret := []byte("\x8a\x11s3cr3t-OTP-seed\x00\xfe\x42\x99")
	s.createIdentity("alice", pw)
	var sessions []string

	key, pub := newAppKey(t)
	r := s.do("POST", "/v1/identities/alice/authenticators", supportToken, map[string]any{"kind": "app", "public_key": pub, "pin": pin})
	var add struct {
		Authenticator service.AuthenticatorView
		Activation    service.AppActivation
	}
	r.decode(t, &add)
	sig, _ := servicetest.SignChallenge(key, add.Activation.Challenge)
	s.want(s.do("POST", "/v1/identities/alice/authenticators/"+add.Authenticator.ID+"/activate", supportToken,
		map[string]any{"ceremony": add.Activation.Ceremony, "signature": sig}), 200, "")
	r = s.appLogin("alice", add.Authenticator.ID, key, pin)
	s.want(r, 200, "")
	var lr service.LoginResult
	r.decode(t, &lr)
	sess := lr.Session
	sessions = append(sessions, sess)
	s.want(s.appLogin("alice", add.Authenticator.ID, key, "111119"), 401, "wrong_pin")

	dev := servicetest.CodeDevice{Serial: "KV-S", Secret: otpSecret}
	doc, _ := servicetest.PSKC(pskcKey, dev)
	s.want(s.do("POST", "/v1/pskc", supportToken, doc, "application/xml"), 200, "")
	r = s.do("POST", "/v1/identities/alice/authenticators", sess, map[string]any{"kind": "audio-code-reader", "serial": "KV-S"})
	var addCode service.AddResult
	r.decode(t, &addCode)
	s.want(s.do("POST", "/v1/identities/alice/authenticators/"+addCode.Authenticator.ID+"/activate", sess,
		map[string]any{"code": dev.Code(s.clk.Now())}), 200, "")
	s.clk.Advance(30 * time.Second)
	r = s.codeLogin("alice", pw, addCode.Authenticator.ID, dev.Code(s.clk.Now()))
	s.want(r, 200, "")
	r.decode(t, &lr)
	sessions = append(sessions, lr.Session)
	s.want(s.passwordLogin("alice", pw+"x", ""), 401, "wrong_password")
	s.want(s.do("GET", "/v1/identities/alice", sessions[1], nil), 200, "")
	s.want(s.do("GET", "/v1/identities/alice/audit", supportToken, nil), 200, "")
	s.want(s.do("POST", "/v1/identities/alice/authenticators/"+add.Authenticator.ID+"/block", sessions[1], map[string]any{"reason": "lost"}), 200, "")
	s.want(s.do("GET", "/v1/audit/verify", supportToken, nil), 200, "")

	secretsText := map[string]string{
		"password":          pw,
		"support token":     supportToken,
		"OTP secret":        string(otpSecret),
		"OTP secret hex":    hex.EncodeToString(otpSecret),
		"OTP secret base64": base64.StdEncoding.EncodeToString(otpSecret),
		"OTP secret b64url": base64.RawURLEncoding.EncodeToString(otpSecret),
		"OTP secret base32": base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(otpSecret),
	}
	for i, se := range sessions {
		secretsText["session "+string(rune('0'+i))] = se
	}
	// A 6-digit PIN could match digits of a duration or a time; it must
	// not stand on its own.
	pinRE := regexp.MustCompile(`(^|[^0-9.])` + pin + `([^0-9]|$)`)

	// The database files, while the server runs and after it stopped.
	check := func(where string, data []byte, withPIN bool) {
		t.Helper()
		for name, sec := range secretsText {
			if bytes.Contains(data, []byte(sec)) {
				t.Errorf("%s contains the %s", where, name)
			}
		}
		if withPIN && pinRE.Match(data) {
			t.Errorf("%s contains the PIN", where)
		}
	}
	scanDir := func(when string) {
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(s.db), "*"))
		if len(files) == 0 {
			t.Fatal("no database files")
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			check(when+" "+filepath.Base(f), b, true)
		}
	}
	scanDir("running")
	check("log", []byte(s.log.String()), true)
	if !strings.Contains(s.log.String(), "level=DEBUG") {
		t.Error("the log was not written at debug level")
	}
	s.mu.Lock()
	seen := append([]string(nil), s.seen...)
	s.mu.Unlock()
	for i, body := range seen {
		for name, sec := range secretsText {
			if !strings.Contains(body, sec) {
				continue
			}
			if strings.HasPrefix(name, "session") && strings.Contains(body, `"session":"`+sec+`"`) {
				continue // the login answer that issues it
			}
			t.Errorf("response %d contains the %s", i, name)
		}
		if pinRE.MatchString(body) {
			t.Errorf("response %d contains the PIN", i)
		}
	}
	if err := s.srv.Close(); err != nil {
		t.Fatal(err)
	}
	scanDir("stopped")
}
