package webauthn

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// maxCachedChains bounds the chain cache of a RelyingParty. A batch
// attestation certificate (FIDO's default: one per model and batch of at
// least 100,000 keys) takes one entry for every chip of its batch; only
// chips with a certificate of their own (a serial-bearing certificate)
// take one each, and those push the oldest entries out.
const maxCachedChains = 512

// chainCache remembers attestation certificate chains that verified to a
// set of trust anchors, so that the chips of one batch, which all present
// the same batch certificate, cost one chain verification between them
// rather than one each. It is safe for concurrent use.
//
// An entry is keyed by the exact DER of every certificate of the chain, in
// order, and by the trust anchors it was verified against (anchors.key),
// and it holds the parsed certificates and the time window in which the
// verified chain holds: from the latest NotBefore to the earliest NotAfter
// of its certificates, the anchor's included. A lookup at a time outside
// that window finds nothing, so an expired certificate is verified again
// (and refused) however often it was accepted before. Only chains that
// verified are kept: a chain that does not chain to the anchors is
// verified afresh every time and cannot fill the cache. What else
// x509.Certificate.Verify checks (signatures, basic constraints, path
// lengths, name constraints, key usage "any") depends on those bytes and
// anchors alone.
//
// The attestation statement's own signature, made over the authenticator
// data and the client data hash of one registration, is never cached:
// go-webauthn verifies it for every registration.
type chainCache struct {
	mu      sync.Mutex
	max     int
	entries map[chainKey]*chainEntry
	order   []chainKey // insertion order, oldest first, for eviction

	verified atomic.Int64 // chains verified by x509, for tests
}

type chainKey [sha256.Size]byte

type chainEntry struct {
	chain               []*x509.Certificate // leaf first, as presented (x5c)
	notBefore, notAfter time.Time           // when the verified chain holds
}

func newChainCache(max int) *chainCache {
	return &chainCache{max: max, entries: make(map[chainKey]*chainEntry)}
}

// anchors is a set of trust anchors and the key that names it in the
// chain cache.
type anchors struct {
	pool *x509.CertPool
	key  [sha256.Size]byte
}

// privateAnchors names a pool that no one else changes (a RelyingParty's
// own copy of Config.Roots): a random key, its own for as long as it
// lives.
func privateAnchors(pool *x509.CertPool) anchors {
	a := anchors{pool: pool}
	rand.Read(a.key[:])
	return a
}

// certAnchors names the pool of certs by their DER.
func certAnchors(certs []*x509.Certificate) anchors {
	a := anchors{pool: x509.NewCertPool()}
	h := sha256.New()
	h.Write([]byte("authbench webauthn anchors\x00"))
	for _, c := range certs {
		a.pool.AddCert(c)
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(c.Raw))))
		h.Write(c.Raw)
	}
	h.Sum(a.key[:0])
	return a
}

// key returns the cache key of the chain ders verified to a.
func (a anchors) chainKey(ders [][]byte) chainKey {
	h := sha256.New()
	h.Write(a.key[:])
	var n [4]byte
	for _, d := range ders {
		binary.BigEndian.PutUint32(n[:], uint32(len(d)))
		h.Write(n[:])
		h.Write(d)
	}
	var k chainKey
	h.Sum(k[:0])
	return k
}

// get returns the parsed chain of k when it verified to its anchors and
// holds at now; nil otherwise.
func (c *chainCache) get(k chainKey, now time.Time) []*x509.Certificate {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	e := c.entries[k]
	c.mu.Unlock()
	if e == nil || now.Before(e.notBefore) || now.After(e.notAfter) {
		return nil
	}
	return e.chain
}

// certs returns the parsed chain of k, whatever the time: the parse of
// the same bytes. Nil when k is not cached.
func (c *chainCache) certs(k chainKey) []*x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[k]; e != nil {
		return e.chain
	}
	return nil
}

// put records that chain (as presented, leaf first) verified as verified
// (leaf to anchor, x509's answer) under key k.
func (c *chainCache) put(k chainKey, chain, verified []*x509.Certificate) {
	if c == nil || len(verified) == 0 {
		return
	}
	e := &chainEntry{chain: chain, notBefore: verified[0].NotBefore, notAfter: verified[0].NotAfter}
	for _, v := range verified[1:] {
		if v.NotBefore.After(e.notBefore) {
			e.notBefore = v.NotBefore
		}
		if v.NotAfter.Before(e.notAfter) {
			e.notAfter = v.NotAfter
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; ok {
		c.entries[k] = e
		return
	}
	for len(c.order) >= c.max {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.entries[k] = e
	c.order = append(c.order, k)
}

func (c *chainCache) count() {
	if c != nil {
		c.verified.Add(1)
	}
}

// len returns the number of entries.
func (c *chainCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// verify verifies chain (parsed from ders, leaf first) to a at now, and
// answers from the cache when it can: nil when the chain leads to one of
// the anchors.
func (c *chainCache) verify(a anchors, ders [][]byte, chain []*x509.Certificate, now time.Time) error {
	k := a.chainKey(ders)
	if c.get(k, now) != nil {
		return nil
	}
	c.count()
	chains, err := verifyChains(chain, a.pool, now)
	if err != nil {
		return err
	}
	c.put(k, chain, chains[0])
	return nil
}
