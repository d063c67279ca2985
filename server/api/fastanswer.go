package api

import (
	"strconv"
	"time"

	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/server/service"
)

// appendAnswer appends the answers of the login steps, of adding a chip
// and of activating or blocking an authenticator to b as writeJSON's
// encoder would (encoding/json, HTML characters escaped, a newline after
// the value), without its reflection, when every string in them is plain
// printable ASCII that needs no escape and every time is one
// encoding/json writes. Otherwise, and for every other value, it reports
// false and writeJSON encodes v with encoding/json. FuzzAppendAnswer
// holds the two to the same bytes.
func appendAnswer(b []byte, v any) ([]byte, bool) {
	e := answer{b: b, ok: true}
	switch v := v.(type) {
	case service.PasswordLoginResult:
		e.passwordLogin(&v)
	case service.FactorLogin:
		e.factorLogin(&v)
	case service.LoginResult:
		e.login(&v)
	case service.AuthenticatorView:
		e.authenticator(&v)
	case service.AddResult:
		e.added(&v)
	default:
		return b, false
	}
	if !e.ok {
		return b, false
	}
	return append(e.b, '\n'), true
}

// answer is the buffer of appendAnswer; ok turns false at the first value
// it cannot write as encoding/json would.
type answer struct {
	b  []byte
	ok bool
}

func (e *answer) raw(s string) { e.b = append(e.b, s...) }

// plain holds the bytes a JSON string carries as they are in
// encoding/json's output: printable ASCII but the quote, the backslash
// and the HTML characters <, > and &.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// str writes a JSON string, when s needs no escape.
func (e *answer) str(s string) {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			e.ok = false
			return
		}
	}
	e.b = append(e.b, '"')
	e.b = append(e.b, s...)
	e.b = append(e.b, '"')
}

// time writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds), for the years and zone offsets it accepts.
func (e *answer) time(t time.Time) {
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off <= -24*3600 || off >= 24*3600 {
		e.ok = false
		return
	}
	e.b = append(e.b, '"')
	if off == 0 {
		e.b = appendUTC(e.b, t)
	} else {
		e.b = t.AppendFormat(e.b, time.RFC3339Nano)
	}
	e.b = append(e.b, '"')
}

// appendUTC appends t, whose zone offset is 0 and whose year has four
// digits, as t.AppendFormat(b, time.RFC3339Nano) does
// ("2006-01-02T15:04:05.999999999Z": the fraction without its trailing
// zeros, none when it is 0) without reading the layout.
func appendUTC(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

func (e *answer) int(n int64)   { e.b = strconv.AppendInt(e.b, n, 10) }
func (e *answer) uint(n uint64) { e.b = strconv.AppendUint(e.b, n, 10) }

func (e *answer) strings(l []string) {
	if l == nil {
		e.raw("null")
		return
	}
	e.raw("[")
	for i, s := range l {
		if i > 0 {
			e.raw(",")
		}
		e.str(s)
	}
	e.raw("]")
}

func (e *answer) passwordLogin(r *service.PasswordLoginResult) {
	e.raw(`{"ceremony":`)
	e.str(r.Ceremony)
	e.raw(`,"expires_at":`)
	e.time(r.ExpiresAt)
	e.raw(`,"second_factors":`)
	if r.SecondFactors == nil {
		e.raw("null")
	} else {
		e.raw("[")
		for i := range r.SecondFactors {
			f := &r.SecondFactors[i]
			if i > 0 {
				e.raw(",")
			}
			e.raw(`{"id":`)
			e.str(f.ID)
			e.raw(`,"kind":`)
			e.str(string(f.Kind))
			e.raw(`,"state":`)
			e.str(string(f.State))
			if f.Label != "" {
				e.raw(`,"label":`)
				e.str(f.Label)
			}
			if f.Serial != "" {
				e.raw(`,"serial":`)
				e.str(f.Serial)
			}
			e.raw("}")
		}
		e.raw("]")
	}
	if r.Next != nil {
		e.raw(`,"next":`)
		e.factorLogin(r.Next)
	}
	e.raw("}")
}

func (e *answer) factorLogin(f *service.FactorLogin) {
	e.raw(`{"ceremony":`)
	e.str(f.Ceremony)
	e.raw(`,"expires_at":`)
	e.time(f.ExpiresAt)
	e.raw(`,"authenticator":`)
	e.str(f.Authenticator)
	e.raw(`,"kind":`)
	e.str(string(f.Kind))
	if f.PublicKey != nil {
		e.raw(`,"publicKey":`)
		e.requestOptions(f.PublicKey)
	}
	if f.Challenge != "" {
		e.raw(`,"challenge":`)
		e.str(f.Challenge)
	}
	e.raw("}")
}

func (e *answer) requestOptions(o *webauthn.RequestOptions) {
	e.raw(`{"challenge":`)
	e.str(o.Challenge)
	e.raw(`,"rpId":`)
	e.str(o.RPID)
	e.raw(`,"allowCredentials":`)
	e.descriptors(o.AllowCredentials)
	e.raw(`,"userVerification":`)
	e.str(o.UserVerification)
	e.raw(`,"timeout":`)
	e.int(o.Timeout)
	if len(o.Hints) > 0 {
		e.raw(`,"hints":`)
		e.strings(o.Hints)
	}
	e.raw("}")
}

// descriptors writes a list of PublicKeyCredentialDescriptorJSON.
func (e *answer) descriptors(l []webauthn.CredentialDescriptor) {
	if l == nil {
		e.raw("null")
		return
	}
	e.raw("[")
	for i := range l {
		c := &l[i]
		if i > 0 {
			e.raw(",")
		}
		e.raw(`{"type":`)
		e.str(c.Type)
		e.raw(`,"id":`)
		e.str(c.ID)
		if len(c.Transports) > 0 {
			e.raw(`,"transports":`)
			e.strings(c.Transports)
		}
		e.raw("}")
	}
	e.raw("]")
}

func (e *answer) login(r *service.LoginResult) {
	e.raw(`{"session":`)
	e.str(r.Session)
	e.raw(`,"session_id":`)
	e.str(r.SessionID)
	e.raw(`,"level":`)
	e.str(r.Level)
	e.raw(`,"expires_at":`)
	e.time(r.ExpiresAt)
	e.raw(`,"authenticators":`)
	e.strings(r.Authenticators)
	e.raw(`,"authenticator":`)
	e.authenticator(&r.Authenticator)
	e.raw("}")
}

func (e *answer) authenticator(a *service.AuthenticatorView) {
	e.raw(`{"id":`)
	e.str(a.ID)
	e.raw(`,"identity_id":`)
	e.str(a.IdentityID)
	e.raw(`,"kind":`)
	e.str(string(a.Kind))
	e.raw(`,"state":`)
	e.str(string(a.State))
	e.raw(`,"label":`)
	e.str(a.Label)
	if a.Serial != "" {
		e.raw(`,"serial":`)
		e.str(a.Serial)
	}
	if a.CredentialID != "" {
		e.raw(`,"credential_id":`)
		e.str(a.CredentialID)
	}
	e.raw(`,"failures":`)
	e.int(int64(a.Failures))
	e.raw(`,"suspensions":`)
	e.int(int64(a.Suspensions))
	e.raw(`,"created_at":`)
	e.time(a.CreatedAt)
	for _, t := range []struct {
		name string
		t    time.Time
	}{{`,"activated_at":`, a.ActivatedAt}, {`,"last_used_at":`, a.LastUsedAt}, {`,"suspended_at":`, a.SuspendedAt}} {
		if !t.t.IsZero() {
			e.raw(t.name)
			e.time(t.t)
		}
	}
	if a.SuspendReason != "" {
		e.raw(`,"suspend_reason":`)
		e.str(a.SuspendReason)
	}
	if !a.BlockedAt.IsZero() {
		e.raw(`,"blocked_at":`)
		e.time(a.BlockedAt)
	}
	if a.BlockReason != "" {
		e.raw(`,"block_reason":`)
		e.str(a.BlockReason)
	}
	e.raw(`,"version":`)
	e.uint(a.Version)
	e.raw(`,"element":`)
	switch el := a.Element.(type) {
	case nil:
		e.raw("null")
	case service.ChipSummary:
		e.raw(`{"aaguid":`)
		e.str(el.AAGUID)
		e.raw(`,"sign_count":`)
		e.uint(uint64(el.SignCount))
		e.raw(`,"attestation_format":`)
		e.str(el.AttestationFormat)
		e.raw(`,"attestation_trusted":`)
		e.raw(strconv.FormatBool(el.AttestationTrusted))
		if el.ChipSerial != "" {
			e.raw(`,"chip_serial":`)
			e.str(el.ChipSerial)
		}
		e.raw("}")
	case service.CodeSummary:
		e.raw(`{"digits":`)
		e.int(int64(el.Digits))
		e.raw(`,"period_seconds":`)
		e.int(int64(el.PeriodSeconds))
		e.raw(`,"algorithm":`)
		e.str(el.Algorithm)
		e.raw(`,"drift_steps":`)
		e.int(int64(el.DriftSteps))
		e.raw(`,"last_step":`)
		e.uint(el.LastStep)
		e.raw("}")
	case struct{}, service.PasswordSummary:
		// A pending chip's element (none yet), a password's.
		e.raw("{}")
	case service.WipedSummary:
		e.raw(`{"wiped":`)
		e.raw(strconv.FormatBool(el.Wiped))
		e.raw("}")
	default:
		e.ok = false
	}
	e.raw("}")
}

func (e *answer) added(r *service.AddResult) {
	e.raw(`{"authenticator":`)
	e.authenticator(&r.Authenticator)
	e.raw(`,"activation":`)
	a, ok := r.Activation.(service.ChipActivation)
	if !ok {
		e.ok = false
		return
	}
	e.raw(`{"ceremony":`)
	e.str(a.Ceremony)
	e.raw(`,"publicKey":`)
	e.creationOptions(&a.PublicKey)
	e.raw("}}")
}

func (e *answer) creationOptions(o *webauthn.CreationOptions) {
	e.raw(`{"challenge":`)
	e.str(o.Challenge)
	e.raw(`,"rp":{"id":`)
	e.str(o.RP.ID)
	e.raw(`,"name":`)
	e.str(o.RP.Name)
	e.raw(`},"user":{"id":`)
	e.str(o.User.ID)
	e.raw(`,"name":`)
	e.str(o.User.Name)
	e.raw(`,"displayName":`)
	e.str(o.User.DisplayName)
	e.raw(`},"pubKeyCredParams":`)
	if o.PubKeyCredParams == nil {
		e.raw("null")
	} else {
		e.raw("[")
		for i, p := range o.PubKeyCredParams {
			if i > 0 {
				e.raw(",")
			}
			e.raw(`{"type":`)
			e.str(p.Type)
			e.raw(`,"alg":`)
			e.int(p.Alg)
			e.raw("}")
		}
		e.raw("]")
	}
	e.raw(`,"timeout":`)
	e.int(o.Timeout)
	e.raw(`,"excludeCredentials":`)
	e.descriptors(o.ExcludeCredentials)
	if o.Attestation != "" {
		e.raw(`,"attestation":`)
		e.str(o.Attestation)
	}
	s := &o.AuthenticatorSelection
	e.raw(`,"authenticatorSelection":{`)
	comma := ""
	for _, f := range []struct{ name, v string }{
		{`"authenticatorAttachment":`, s.AuthenticatorAttachment}, {`"residentKey":`, s.ResidentKey},
	} {
		if f.v != "" {
			e.raw(comma + f.name)
			e.str(f.v)
			comma = ","
		}
	}
	if s.RequireResidentKey {
		e.raw(comma + `"requireResidentKey":true`)
		comma = ","
	}
	if s.UserVerification != "" {
		e.raw(comma + `"userVerification":`)
		e.str(s.UserVerification)
	}
	e.raw("}")
	if len(o.Hints) > 0 {
		e.raw(`,"hints":`)
		e.strings(o.Hints)
	}
	e.raw("}")
}
