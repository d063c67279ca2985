package webauthn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authbench/authbench/device/ctap2"
	"github.com/authbench/authbench/sim/chip"
)

// newTestCA makes an attestation CA valid from notBefore to notAfter; the
// batch certificates it issues to simulated chips have the same validity.
func newTestCA(t *testing.T, name string, notBefore, notAfter time.Time) *chip.CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"DK"}, Organization: []string{"authbench"}, CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &chip.CA{Cert: cert, Key: key}
}

func poolOf(cas ...*chip.CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

// cacheFixture is a relying party on a clock the test moves, and chips
// whose batch certificates its CAs issue.
type cacheFixture struct {
	t     *testing.T
	clock atomic.Pointer[time.Time]
	chips int
}

func newCacheFixture(t *testing.T) *cacheFixture {
	f := &cacheFixture{t: t}
	now := time.Now()
	f.clock.Store(&now)
	return f
}

func (f *cacheFixture) now() time.Time { return *f.clock.Load() }

func (f *cacheFixture) set(t time.Time) { f.clock.Store(&t) }

func (f *cacheFixture) rp(roots *x509.CertPool) *RelyingParty {
	f.t.Helper()
	rp, err := New(Config{ID: "localhost", Origins: []string{"http://localhost:8080"}, Roots: roots, Now: f.now})
	if err != nil {
		f.t.Fatal(err)
	}
	return rp
}

var cacheChallenge = []byte("a registration challenge, 32 B..")

// register makes a registration of a new simulated chip of the CA's batch
// for rp, with edit (nil: none) applied to its attestation.
func (f *cacheFixture) register(rp *RelyingParty, ca *chip.CA, faults chip.Faults, edit func(*ctap2.Attestation)) *RegistrationResponse {
	f.t.Helper()
	f.chips++
	c, err := chip.New(chip.Options{Seed: []byte{byte(f.chips), 'c'}, CA: ca, Faults: faults})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	opts := rp.CreationOptions(cacheChallenge, UserEntity{ID: Encode([]byte("user")), Name: "alice", DisplayName: "alice"}, nil, 0)
	r, err := Create(f.t.Context(), c, &opts, "http://localhost:8080")
	if err != nil {
		f.t.Fatal(err)
	}
	if edit != nil {
		raw, _ := Decode("", r.Response.AttestationObject)
		ao, err := ParseAttestationObject(raw)
		if err != nil {
			f.t.Fatal(err)
		}
		att, err := ao.Attestation()
		if err != nil {
			f.t.Fatal(err)
		}
		edit(att)
		b, err := EncodeAttestationObject(att)
		if err != nil {
			f.t.Fatal(err)
		}
		r.Response.AttestationObject = Encode(b)
	}
	return r
}

// x5c returns the certificate chain a registration presents.
func x5cOf(t *testing.T, r *RegistrationResponse) [][]byte {
	t.Helper()
	raw, _ := Decode("", r.Response.AttestationObject)
	ao, err := ParseAttestationObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	ders, err := ao.x5c()
	if err != nil {
		t.Fatal(err)
	}
	return ders
}

func wantUntrusted(t *testing.T, what string, reg *Registration, err error) {
	t.Helper()
	var we *Error
	if reg != nil || !errors.As(err, &we) || !errors.Is(err, ErrUntrusted) {
		t.Errorf("%s: got %+v, %v; want a refusal wrapping ErrUntrusted", what, reg, err)
	}
}

// The chips of one batch present the same certificate chain: it is
// verified once, and every registration is still checked in full.
func TestChainCacheBatch(t *testing.T) {
	f := newCacheFixture(t)
	now := f.now()
	ca := newTestCA(t, "batch CA", now.Add(-time.Hour), now.Add(time.Hour))
	rp := f.rp(poolOf(ca))
	var first [][]byte
	for i := range 5 {
		r := f.register(rp, ca, chip.Faults{}, nil)
		if i == 0 {
			first = x5cOf(t, r)
		} else if ders := x5cOf(t, r); len(ders) != 1 || !bytes.Equal(ders[0], first[0]) {
			t.Fatal("the chips of one batch present different certificates")
		}
		reg, err := rp.VerifyRegistration(t.Context(), r, cacheChallenge)
		if err != nil || !reg.Trusted || len(reg.Chain) != 1 {
			t.Fatalf("chip %d: %+v, %v", i, reg, err)
		}
	}
	if n, v := rp.trust.chains.len(), rp.trust.chains.verified.Load(); n != 1 || v != 1 {
		t.Errorf("%d entries after %d chain verifications for five chips of one batch; want 1 and 1", n, v)
	}
}

// What the cache must never let through: a chain that differs from the
// one it verified, a chain to other roots, a certificate that has expired
// (or is not yet valid) since, and a bad statement signature made with a
// cached chain.
func TestChainCacheRefusals(t *testing.T) {
	f := newCacheFixture(t)
	start := f.now()
	ca := newTestCA(t, "batch CA", start.Add(-time.Hour), start.Add(time.Hour))
	rp := f.rp(poolOf(ca))
	good := f.register(rp, ca, chip.Faults{}, nil)
	if reg, err := rp.VerifyRegistration(t.Context(), good, cacheChallenge); err != nil || !reg.Trusted {
		t.Fatalf("the batch chain: %+v, %v", reg, err)
	}
	if rp.trust.chains.len() != 1 {
		t.Fatal("the verified chain was not cached")
	}

	t.Run("changed chain", func(t *testing.T) {
		// The same certificate with one byte of its CA's signature
		// changed: it still parses, and its key still verifies the
		// statement (go-webauthn accepts it), but it chains to nothing.
		r := f.register(rp, ca, chip.Faults{}, func(att *ctap2.Attestation) {
			der := bytes.Clone(att.Statement.X5C[0])
			der[len(der)-1] ^= 0x01
			att.Statement.X5C = [][]byte{der}
		})
		reg, err := rp.VerifyRegistration(t.Context(), r, cacheChallenge)
		wantUntrusted(t, "a changed byte", reg, err)

		// A certificate of the same key and subject from another CA (the
		// batch key is the model's): the statement verifies, the chain
		// does not.
		other := newTestCA(t, "batch CA", start.Add(-time.Hour), start.Add(time.Hour))
		r = f.register(rp, other, chip.Faults{}, nil)
		reg, err = rp.VerifyRegistration(t.Context(), r, cacheChallenge)
		wantUntrusted(t, "another CA's certificate", reg, err)

		// The cached chain followed by a certificate x509 cannot use
		// still verifies: only the path to an anchor counts.
		r = f.register(rp, ca, chip.Faults{}, func(att *ctap2.Attestation) {
			att.Statement.X5C = append(att.Statement.X5C, other.Cert.Raw)
		})
		if reg, err := rp.VerifyRegistration(t.Context(), r, cacheChallenge); err != nil || !reg.Trusted || len(reg.Chain) != 2 {
			t.Errorf("the batch chain and an unused intermediate: %+v, %v", reg, err)
		}
	})

	t.Run("other roots", func(t *testing.T) {
		// The same chain, verified by a relying party that trusts another
		// CA, and by one that trusts none.
		other := newTestCA(t, "other CA", start.Add(-time.Hour), start.Add(time.Hour))
		for name, rp2 := range map[string]*RelyingParty{"another CA": f.rp(poolOf(other)), "no roots": f.rp(nil)} {
			reg, err := rp2.VerifyRegistration(t.Context(), good, cacheChallenge)
			wantUntrusted(t, name, reg, err)
		}
		// Roots added to the caller's pool after New change nothing.
		pool := poolOf(other)
		rp3 := f.rp(pool)
		pool.AddCert(ca.Cert)
		reg, err := rp3.VerifyRegistration(t.Context(), good, cacheChallenge)
		wantUntrusted(t, "a root added after New", reg, err)
	})

	t.Run("validity", func(t *testing.T) {
		defer f.set(start)
		for _, at := range []time.Time{start.Add(2 * time.Hour), start.Add(-2 * time.Hour)} {
			f.set(at)
			reg, err := rp.VerifyRegistration(t.Context(), good, cacheChallenge)
			wantUntrusted(t, "at "+at.Sub(start).String(), reg, err)
		}
		f.set(start.Add(59 * time.Minute))
		if reg, err := rp.VerifyRegistration(t.Context(), good, cacheChallenge); err != nil || !reg.Trusted {
			t.Errorf("within the validity: %+v, %v", reg, err)
		}
	})

	t.Run("bad signature", func(t *testing.T) {
		r := f.register(rp, ca, chip.Faults{BadSignature: true}, nil)
		if !bytes.Equal(x5cOf(t, r)[0], x5cOf(t, good)[0]) {
			t.Fatal("the faulty chip presents another chain; the cache is not in play")
		}
		reg, err := rp.VerifyRegistration(t.Context(), r, cacheChallenge)
		wantUntrusted(t, "a bad statement signature", reg, err)
	})
}

// The cache itself: keyed by the anchors and the exact DER, answering only
// within the window, bounded, safe for concurrent use.
func TestChainCacheEntries(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "CA", now.Add(-time.Hour), now.Add(time.Hour))
	other := newTestCA(t, "other CA", now.Add(-time.Hour), now.Add(time.Hour))
	ders := [][]byte{ca.Cert.Raw}
	chain := []*x509.Certificate{ca.Cert}
	a, b := certAnchors([]*x509.Certificate{ca.Cert}), certAnchors([]*x509.Certificate{other.Cert})
	if a.chainKey(ders) == b.chainKey(ders) || a.key == privateAnchors(a.pool).key {
		t.Fatal("the anchors are not part of the key")
	}
	if a.chainKey([][]byte{{1, 2}, {3}}) == a.chainKey([][]byte{{1}, {2, 3}}) {
		t.Fatal("the key does not tell the certificates apart")
	}

	c := newChainCache(3)
	if err := c.verify(a, ders, chain, now); err != nil {
		t.Fatal(err)
	}
	if err := c.verify(b, ders, chain, now); err == nil {
		t.Fatal("verified to anchors that do not hold its root")
	}
	if c.len() != 1 || c.get(a.chainKey(ders), now) == nil || c.get(b.chainKey(ders), now) != nil {
		t.Fatal("want one entry, under anchors a")
	}
	for _, at := range []time.Time{now.Add(-2 * time.Hour), now.Add(2 * time.Hour)} {
		if c.get(a.chainKey(ders), at) != nil {
			t.Errorf("an entry answers at %v, outside its validity", at.Sub(now))
		}
		if err := c.verify(a, ders, chain, at); err == nil {
			t.Errorf("verified at %v, outside its validity", at.Sub(now))
		}
	}
	if c.get(a.chainKey(ders), ca.Cert.NotAfter) == nil || c.get(a.chainKey(ders), ca.Cert.NotBefore) == nil {
		t.Error("the entry does not answer at the edges of its validity")
	}

	// Bounded: the oldest goes first.
	for i := range 10 {
		c.put(a.chainKey([][]byte{{byte(i)}}), chain, chain)
		if c.len() > 3 {
			t.Fatalf("%d entries, bound 3", c.len())
		}
	}
	if c.certs(a.chainKey([][]byte{{9}})) == nil || c.certs(a.chainKey([][]byte{{6}})) != nil {
		t.Error("eviction did not keep the newest entries")
	}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := a.chainKey([][]byte{{byte(g), byte(i)}})
				c.put(k, chain, chain)
				c.get(k, now)
				if err := c.verify(a, ders, chain, now); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.len() > 3 {
		t.Errorf("%d entries, bound 3", c.len())
	}
}
