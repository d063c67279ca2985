package audit

import (
	"slices"
	"strings"
	"testing"

	"github.com/authbench/authbench/server/domain"
)

func TestSecretKey(t *testing.T) {
	tests := []struct {
		key    string
		secret bool
	}{
		{"pin", true},
		{"PIN", true},
		{"new_pin", true},
		{"appPIN", true},
		{"appPin", true},
		{"password", true},
		{"Password", true},
		{"old-password", true},
		{"passwd", true},
		{"otp", true},
		{"otp_secret", true},
		{"totp.seed", true},
		{"code", true},
		{"entered code", true},
		{"OTPCode", true},
		{"key", true},
		{"private_key", true},
		{"api-key", true},
		{"privkey", true},
		{"token", true},
		{"sessionToken", true},
		{"session", true},
		{"secret", true},
		{"client_secret", true},
		{"verifier", true},
		{"credential", true},
		{"x-pin-2", true},

		{"credential_id", false},
		{"key_id", false},
		{"keyID", false},
		{"session_id", false},
		{"kind", false},
		{"serial", false},
		{"failures", false},
		{"stored_count", false},
		{"step", false},
		{"highest_step", false},
		{"cause", false},
		{"reason", false},
		{"spinner", false},  // contains "pin", but not as a word
		{"monkey", false},   // contains "key"
		{"barcodes", false}, // contains "code"
		{"keyboard", false},
		{"", false},
		{"___", false},
	}
	for _, tt := range tests {
		if got := SecretKey(tt.key); got != tt.secret {
			t.Errorf("SecretKey(%q) = %v, want %v", tt.key, got, tt.secret)
		}
	}
}

// TestDomainKeysPass: every detail key server/domain documents stays as
// it is.
func TestDomainKeysPass(t *testing.T) {
	for _, k := range []string{"kind", "from", "to", "failures", "suspensions", "cause", "via", "serial",
		"credential_id", "op", "error", "detail", "stored_count", "received_count", "step", "highest_step"} {
		if SecretKey(k) {
			t.Errorf("domain detail key %q is redacted", k)
		}
	}
	for _, ev := range scenario(t) {
		for k := range ev.Details {
			if SecretKey(k) && k != "pin" && k != "attempt_code" {
				t.Errorf("event %s: key %q is redacted", ev.Type, k)
			}
		}
	}
	e := (&domain.SignCountError{Stored: 5, Received: 5}).Failure()
	r := (&domain.ReplayError{Highest: 9, Step: 9}).Failure()
	for _, d := range []map[string]string{e.Details, r.Details} {
		for k, v := range RedactDetails(d) {
			if v == Redacted {
				t.Errorf("key %q is redacted", k)
			}
		}
	}
}

func TestRedactDetails(t *testing.T) {
	in := map[string]string{"pin": "314159", "kind": "app", "otp_code": "123456"}
	out := RedactDetails(in)
	if out["pin"] != Redacted || out["otp_code"] != Redacted || out["kind"] != "app" || len(out) != 3 {
		t.Fatalf("RedactDetails = %v", out)
	}
	if in["pin"] != "314159" {
		t.Fatal("RedactDetails changed its input")
	}
	if RedactDetails(nil) != nil || RedactDetails(map[string]string{}) != nil {
		t.Fatal("RedactDetails of nothing is not nil")
	}
}

// TestEachWord: the words SecretKey looks up, lowercased, split where
// its doc says; invalid UTF-8 separates, a long word stays whole.
func TestEachWord(t *testing.T) {
	long := strings.Repeat("ab", 50) // longer than eachWord's buffer
	for key, want := range map[string][]string{
		"":                       nil,
		"otp_code":               {"otp", "code"},
		"appPIN":                 {"app", "pin"},
		"OTPCode":                {"otp", "code"},
		"Session-Token":          {"session", "token"},
		"key2Id":                 {"key2", "id"},
		"ÆbleKODE\xffpin":        {"æble", "kode", "pin"},
		"  --  ":                 nil,
		strings.ToUpper(long):    {long},
		"x_" + long + "PIN_code": {"x", long, "pin", "code"},
	} {
		var got []string
		eachWord(key, func(w []byte) { got = append(got, string(w)) })
		if !slices.Equal(got, want) {
			t.Errorf("eachWord(%q) = %q, want %q", key, got, want)
		}
	}
}
