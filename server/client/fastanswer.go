package client

import (
	"time"

	"github.com/authbench/authbench/device/webauthn"
	"github.com/authbench/authbench/internal/plainjson"
)

// The answers of adding a chip, activating and blocking an authenticator
// and of the login steps are what a client decodes most (the load
// generator's clients decode them beside the server, in its process), and
// encoding/json decodes them by reflection. fastAnswer decodes them by
// hand (internal/plainjson) when they are in the plain shape the server
// writes: keys exactly as named, each once, strings without escapes,
// integers without fraction or exponent, and no member this client does
// not know but last_used_at (which Authenticator leaves out). Anything
// else is left to json.Unmarshal, so what fastAnswer accepts it decodes
// as json.Unmarshal would (FuzzFastAnswer holds the two to that).

// fastAnswer decodes data into out when out is one of the answers above
// and data is in the plain shape; it reports whether it did. out must
// hold its zero value.
func fastAnswer(data []byte, out any) bool {
	d := plainjson.New(data)
	var ok bool
	switch out := out.(type) {
	case *Added:
		ok = d.Object(func(key []byte) bool {
			switch string(key) {
			case "authenticator":
				return authenticator(&d, &out.Authenticator)
			case "activation":
				return d.Null() || activation(&d, &out.Activation)
			}
			return false
		})
	case *Authenticator:
		ok = authenticator(&d, out)
	case *Session:
		ok = d.Object(func(key []byte) bool {
			switch string(key) {
			case "session":
				return d.Str(&out.Token)
			case "session_id":
				return d.Str(&out.ID)
			case "level":
				return d.Str(&out.Level)
			case "expires_at":
				return d.Time(&out.ExpiresAt)
			case "authenticators":
				return d.Strs(&out.Authenticators)
			case "authenticator":
				return authenticator(&d, &out.Authenticator)
			}
			return false
		})
	case *PasswordStep:
		ok = d.Object(func(key []byte) bool {
			switch string(key) {
			case "ceremony":
				return d.Str(&out.Ceremony)
			case "expires_at":
				return d.Time(&out.ExpiresAt)
			case "second_factors":
				return plainjson.List(&d, &out.SecondFactors, func(f *SecondFactor) bool { return secondFactor(&d, f) })
			case "next":
				if d.Null() {
					out.Next = nil
					return true
				}
				out.Next = new(FactorChallenge)
				return factorChallenge(&d, out.Next)
			}
			return false
		})
	case *FactorChallenge:
		ok = factorChallenge(&d, out)
	default:
		return false
	}
	return ok && d.End()
}

// authenticator decodes an Authenticator (null leaves it as it is).
func authenticator(d *plainjson.Scanner, a *Authenticator) bool {
	if d.Null() {
		return true
	}
	return d.Object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.Str(&a.ID)
		case "identity_id":
			return d.Str(&a.IdentityID)
		case "kind":
			return d.Str(&a.Kind)
		case "state":
			return d.Str(&a.State)
		case "label":
			return d.Str(&a.Label)
		case "serial":
			return d.Str(&a.Serial)
		case "credential_id":
			return d.Str(&a.CredentialID)
		case "failures":
			return d.IntOf(&a.Failures)
		case "suspensions":
			return d.IntOf(&a.Suspensions)
		case "created_at":
			return d.Time(&a.CreatedAt)
		case "activated_at":
			return d.TimePtr(&a.ActivatedAt)
		case "last_used_at":
			var t time.Time
			return d.Time(&t)
		case "suspended_at":
			return d.TimePtr(&a.SuspendedAt)
		case "suspend_reason":
			return d.Str(&a.SuspendReason)
		case "blocked_at":
			return d.TimePtr(&a.BlockedAt)
		case "block_reason":
			return d.Str(&a.BlockReason)
		case "version":
			return d.Int(&a.Version, 64)
		case "element":
			return d.Null() || element(d, &a.Element)
		}
		return false
	})
}

// element decodes an Element.
func element(d *plainjson.Scanner, e *Element) bool {
	return d.Object(func(key []byte) bool {
		switch string(key) {
		case "aaguid":
			return d.Str(&e.AAGUID)
		case "sign_count":
			n := uint64(e.SignCount)
			ok := d.Uint(&n, 32)
			e.SignCount = uint32(n)
			return ok
		case "attestation_format":
			return d.Str(&e.AttestationFormat)
		case "attestation_trusted":
			return d.BoolPtr(&e.AttestationTrusted)
		case "chip_serial":
			return d.Str(&e.ChipSerial)
		case "digits":
			return d.IntOf(&e.Digits)
		case "period_seconds":
			return d.IntOf(&e.PeriodSeconds)
		case "algorithm":
			return d.Str(&e.Algorithm)
		case "drift_steps":
			return d.IntOf(&e.DriftSteps)
		case "last_step":
			return d.Uint(&e.LastStep, 64)
		case "public_key_alg":
			return d.Str(&e.PublicKeyAlg)
		case "wiped":
			return d.Bool(&e.Wiped)
		}
		return false
	})
}

// activation decodes the Activation of a chip (an app's challenge is left
// to json.Unmarshal).
func activation(d *plainjson.Scanner, a *Activation) bool {
	return d.Object(func(key []byte) bool {
		switch string(key) {
		case "ceremony":
			return d.Str(&a.Ceremony)
		case "needs":
			return d.Str(&a.Needs)
		case "publicKey":
			if d.Null() {
				a.PublicKey = nil
				return true
			}
			a.PublicKey = new(CreationOptions)
			return creationOptions(d, a.PublicKey)
		}
		return false
	})
}

func secondFactor(d *plainjson.Scanner, f *SecondFactor) bool {
	return d.Null() || d.Object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.Str(&f.ID)
		case "kind":
			return d.Str(&f.Kind)
		case "state":
			return d.Str(&f.State)
		case "label":
			return d.Str(&f.Label)
		case "serial":
			return d.Str(&f.Serial)
		}
		return false
	})
}

// factorChallenge decodes a FactorChallenge without an app's challenge.
func factorChallenge(d *plainjson.Scanner, f *FactorChallenge) bool {
	return d.Null() || d.Object(func(key []byte) bool {
		switch string(key) {
		case "ceremony":
			return d.Str(&f.Ceremony)
		case "expires_at":
			return d.Time(&f.ExpiresAt)
		case "authenticator":
			return d.Str(&f.Authenticator)
		case "kind":
			return d.Str(&f.Kind)
		case "publicKey":
			if d.Null() {
				f.PublicKey = nil
				return true
			}
			f.PublicKey = new(RequestOptions)
			return requestOptions(d, f.PublicKey)
		}
		return false
	})
}

func creationOptions(d *plainjson.Scanner, o *CreationOptions) bool {
	return d.Object(func(key []byte) bool {
		switch string(key) {
		case "challenge":
			return d.Str(&o.Challenge)
		case "rp":
			return d.Null() || d.Object(func(key []byte) bool {
				switch string(key) {
				case "id":
					return d.Str(&o.RP.ID)
				case "name":
					return d.Str(&o.RP.Name)
				}
				return false
			})
		case "user":
			return d.Null() || d.Object(func(key []byte) bool {
				switch string(key) {
				case "id":
					return d.Str(&o.User.ID)
				case "name":
					return d.Str(&o.User.Name)
				case "displayName":
					return d.Str(&o.User.DisplayName)
				}
				return false
			})
		case "pubKeyCredParams":
			return plainjson.List(d, &o.PubKeyCredParams, func(p *webauthn.CredentialParameter) bool {
				return d.Null() || d.Object(func(key []byte) bool {
					switch string(key) {
					case "type":
						return d.Str(&p.Type)
					case "alg":
						return d.Int(&p.Alg, 64)
					}
					return false
				})
			})
		case "timeout":
			return d.Int(&o.Timeout, 64)
		case "excludeCredentials":
			return descriptors(d, &o.ExcludeCredentials)
		case "attestation":
			return d.Str(&o.Attestation)
		case "authenticatorSelection":
			s := &o.AuthenticatorSelection
			return d.Null() || d.Object(func(key []byte) bool {
				switch string(key) {
				case "authenticatorAttachment":
					return d.Str(&s.AuthenticatorAttachment)
				case "residentKey":
					return d.Str(&s.ResidentKey)
				case "requireResidentKey":
					return d.Bool(&s.RequireResidentKey)
				case "userVerification":
					return d.Str(&s.UserVerification)
				}
				return false
			})
		case "hints":
			return d.Strs(&o.Hints)
		}
		return false
	})
}

func requestOptions(d *plainjson.Scanner, o *RequestOptions) bool {
	return d.Object(func(key []byte) bool {
		switch string(key) {
		case "challenge":
			return d.Str(&o.Challenge)
		case "rpId":
			return d.Str(&o.RPID)
		case "allowCredentials":
			return descriptors(d, &o.AllowCredentials)
		case "userVerification":
			return d.Str(&o.UserVerification)
		case "timeout":
			return d.Int(&o.Timeout, 64)
		case "hints":
			return d.Strs(&o.Hints)
		}
		return false
	})
}

// descriptors decodes a list of PublicKeyCredentialDescriptorJSON.
func descriptors(d *plainjson.Scanner, p *[]CredentialDescriptor) bool {
	return plainjson.List(d, p, func(c *CredentialDescriptor) bool {
		return d.Null() || d.Object(func(key []byte) bool {
			switch string(key) {
			case "type":
				return d.Str(&c.Type)
			case "id":
				return d.Str(&c.ID)
			case "transports":
				return d.Strs(&c.Transports)
			}
			return false
		})
	})
}
