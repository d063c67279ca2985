package chip

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authbench/authbench/device"
	"github.com/authbench/authbench/device/ctap2"
)

// Defaults and limits.
const (
	DefaultSlots = 25 // resident (discoverable) credential slots

	// ResetWindow is how long after power-up authenticatorReset is allowed
	// (CTAP 2.1 §6.6).
	ResetWindow = 10 * time.Second
	// NextAssertionWindow is how long the credentials found by a
	// getAssertion stay available to getNextAssertion after the previous
	// assertion (CTAP 2.1 §6.3).
	NextAssertionWindow = 30 * time.Second

	maxMsgSize         = 1200 // getInfo maxMsgSize, as common security keys report
	maxCredsInList     = 8    // getInfo maxCredentialCountInList
	maxUserIDLen       = 64   // WebAuthn §5.4.3: a user handle is at most 64 bytes
	firmwareVersion    = 0x010000
	firmwareVersionStr = "1.0.0"
)

// Options configures a new chip. The zero value is a random chip with the
// defaults: a FIDO2 chip (CTAP 2.1 and U2F), 25 resident slots, presence
// Auto, "packed" batch attestation from the embedded test attestation CA,
// and no faults.
type Options struct {
	// Profile is what the chip speaks: ProfileFIDO2 (the zero value),
	// ProfileU2F or ProfileCTAP2Only. It is the chip's model: it decides
	// the AAGUID and the batch attestation certificate.
	Profile Profile
	// Attestation is the attestation the chip gives: AttestationBatch (the
	// zero value; the model's certificate, no serial number),
	// AttestationSerial, AttestationSelf or AttestationNone (not for
	// ProfileU2F).
	Attestation Attestation

	// Seed makes the chip deterministic: the same seed gives the same
	// serial number, attestation key (with AttestationSerial) and the same
	// sequence of credential keys and IDs. Nil means a random seed.
	Seed []byte
	// Serial overrides the printed serial number (default "AB-" and ten
	// digits derived from the seed).
	Serial string
	// Slots is the number of resident credentials the chip can hold
	// (default 25). Non-resident credentials are kept too, without limit.
	Slots int

	// Presence is what the simulated user does when the chip asks for a
	// touch (default Auto).
	Presence Presence
	// PresenceFunc, if set, is asked for the policy of every single
	// presence check instead of Presence, so tests can script a sequence.
	// It may be called from several goroutines at once.
	PresenceFunc func(op Op) Presence

	// Now is the clock (nil means time.Now). It times the reset window and
	// the getNextAssertion window, so tests move a virtual clock.
	Now func() time.Time

	// CA issues the model's batch certificate, or with AttestationSerial
	// the chip's own certificate (default: TestCA, the embedded authbench
	// test CA).
	CA *CA
	// AttestationNone is the old spelling of Attestation: AttestationNone.
	//
	// Deprecated: set Attestation.
	AttestationNone bool

	// DeterministicSignatures has the chip sign as RFC 6979 describes:
	// the nonce is derived from the key and the message instead of drawn
	// at random (with randomness added, as crypto/ecdsa does by default).
	// The signatures are ECDSA signatures all the same, and every message
	// a chip signs holds the relying party's fresh challenge; they cost a
	// third less CPU, which a load generator running thousands of chips
	// beside the server it measures (authbench load) leaves to the server.
	DeterministicSignatures bool

	// Faults make the chip misbehave so that conformance checks can be
	// shown to fail.
	Faults Faults
}

// Faults are deliberate defects of a simulated chip.
type Faults struct {
	// IgnoreExcludeList creates a new credential even when the excludeList
	// names one the chip holds for the RP.
	IgnoreExcludeList bool
	// CounterStuck stops the signature counters: the first assertion of a
	// credential reports 1, and every later one reports 1 again (the
	// cloned-chip signal of a counter that does not increase).
	CounterStuck bool
	// CounterOffset is added (mod 2^32) to every signature counter the chip
	// reports.
	CounterOffset uint32
	// WrongRPIDHash puts a hash of another RP ID into the authenticator
	// data (and the U2F application parameter of the signed data).
	WrongRPIDHash bool
	// BadSignature makes every signature (attestation, assertion, U2F)
	// cover other bytes than it should, so it does not verify.
	BadSignature bool
}

// Chip is a simulated MitID chip: a FIDO security key that speaks CTAP 2.1
// and U2F (CTAP1), or one of them (Options.Profile), with a button for user
// presence and no PIN. It holds its credentials like a real chip would and
// signs with their keys.
//
// A Chip implements device.Chip and the optional NextAssertioner, Resetter
// and Selector interfaces in-process, u2f's Authenticator, and the
// device-side Handler of device/ctaphid and device/apdu (ServeCTAP2,
// ServeU2F); it reports its protocols (device.ProtocolReporter), so that
// ctaphid.Serve and apdu.NewCard announce what it speaks. A U2F-only chip
// answers its CTAP2 methods with CTAP1_ERR_INVALID_COMMAND, as its wire
// would; hosts reach it through u2f.Chip (the CTAP 2.1 §10 translation)
// over ServeU2F. It is safe for concurrent use.
type Chip struct {
	opts Options
	now  func() time.Time

	handlersOnce sync.Once
	handlers     *handlers

	waiters sync.WaitGroup // presence waits in progress

	mu        sync.Mutex // guards the fields below
	st        *state
	attKey    *ecdsa.PrivateKey
	attCert   *x509.Certificate
	path      string // file the state is saved to after each change; "" for none
	poweredAt time.Time
	next      *nextAssertions
	closed    bool
	nwait     int           // presence waits in progress (also counted by waiters)
	touch     chan struct{} // closed by Touch
	touchedAt time.Time     // last Touch nobody was waiting for
	power     chan struct{} // closed by PowerCycle
	closing   chan struct{} // closed by Close
}

var (
	_ device.Chip             = (*Chip)(nil)
	_ device.NextAssertioner  = (*Chip)(nil)
	_ device.Resetter         = (*Chip)(nil)
	_ device.Selector         = (*Chip)(nil)
	_ device.ProtocolReporter = (*Chip)(nil)
)

// state is what a chip keeps across power cycles: its identity and its
// credentials (Save writes it out).
type state struct {
	seed     []byte
	prk      prk // the seed's HKDF key, extracted at the first credential
	serial   string
	aaguid   [16]byte
	slots    int
	attKey   []byte // raw P-256 scalar
	attCert  []byte // DER
	created  uint64 // credentials made so far; numbers the next one
	creds    []*credential
	credByID map[string]*credential
}

// credential is one security element in the chip.
type credential struct {
	id       []byte
	key      *ecdsa.PrivateKey
	rpID     string // empty for a U2F registration (only the hash is known)
	rpIDHash [32]byte
	user     *ctap2.UserEntity // resident credentials only
	resident bool
	u2f      bool   // made by U2F_REGISTER
	counter  uint32 // signature counter, incremented before each assertion
	seq      uint64 // creation number (1, 2, ...)
}

// nextAssertions is the state authenticatorGetNextAssertion continues from
// (CTAP 2.1 §6.3).
type nextAssertions struct {
	ids            [][]byte
	index          int
	clientDataHash []byte
	rpIDHash       [32]byte
	up             bool
	last           time.Time
}

// New makes a chip. It returns an error if opts.Slots is negative, the
// profile or attestation unknown, AttestationNone asked of a U2F-only chip,
// if the CA cannot issue the attestation certificate, or if no random seed
// can be had.
func New(opts Options) (*Chip, error) {
	if opts.Slots < 0 {
		return nil, fmt.Errorf("chip: negative slot count %d", opts.Slots)
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	seed := append([]byte(nil), opts.Seed...)
	if opts.Seed == nil {
		seed = make([]byte, seedLen)
		if _, err := rand.Read(seed); err != nil {
			return nil, fmt.Errorf("chip: random seed: %w", err)
		}
	}
	st := &state{
		seed:     seed,
		serial:   opts.Serial,
		aaguid:   opts.Profile.AAGUID(),
		slots:    opts.Slots,
		credByID: map[string]*credential{},
	}
	if st.serial == "" {
		st.serial = deriveSerial(seed)
	}
	if st.slots == 0 {
		st.slots = DefaultSlots
	}
	ca := opts.CA
	if ca == nil {
		var err error
		if ca, err = TestCA(); err != nil {
			return nil, err
		}
	}
	if ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("chip: CA without certificate or key")
	}
	var (
		att *batch
		err error
	)
	if opts.attestation() == AttestationSerial {
		att, err = serialAttestation(ca, opts.Profile, seed, st.serial)
	} else {
		// Self and none attestation leave the certificate unused by CTAP2;
		// a FIDO2 chip's U2F side still sends it.
		att, err = batchAttestation(ca, opts.Profile)
	}
	if err != nil {
		return nil, err
	}
	st.attKey, st.attCert = att.key, att.cert
	return newChip(st, opts)
}

// check refuses options that make no chip.
func (o *Options) check() error {
	switch {
	case !o.Profile.valid():
		return fmt.Errorf("chip: unknown profile %d", int(o.Profile))
	case !o.Attestation.valid():
		return fmt.Errorf("chip: unknown attestation %d", int(o.Attestation))
	case o.Profile == ProfileU2F && o.attestation() == AttestationNone:
		return errors.New(`chip: a U2F-only chip cannot leave out its attestation: a U2F registration always carries a certificate (FIDO U2F Raw Message Formats §4.3); use batch, serial or self`)
	}
	return nil
}

// attestation returns the attestation asked for, the deprecated
// AttestationNone included.
func (o *Options) attestation() Attestation {
	if o.AttestationNone {
		return AttestationNone
	}
	return o.Attestation
}

// newChip makes a powered chip from its state.
func newChip(st *state, opts Options) (*Chip, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	attKey, cert, err := parseAttestation(st.attKey, st.attCert)
	if err != nil {
		return nil, err
	}
	c := &Chip{
		opts:    opts,
		now:     opts.Now,
		st:      st,
		attKey:  attKey,
		attCert: cert,
		touch:   make(chan struct{}),
		power:   make(chan struct{}),
		closing: make(chan struct{}),
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.poweredAt = c.now()
	return c, nil
}

// Serial returns the chip's serial number, as printed on it (and, with
// AttestationSerial, as the serialNumber attribute of its attestation
// certificate).
func (c *Chip) Serial() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.serial
}

// AAGUID returns the chip's AAGUID (WebAuthn §6.5.1): its model's, the
// same for every chip of the profile (Profile.AAGUID); zero for a U2F-only
// chip.
func (c *Chip) AAGUID() [16]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.aaguid
}

// Certificate returns the chip's attestation certificate: the model's batch
// certificate, or with AttestationSerial the chip's own. The chips of one
// batch share it: it must not be modified.
func (c *Chip) Certificate() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attCert
}

// DeviceInfo describes the chip as a device found by a simulator.
func (c *Chip) DeviceInfo() device.Info {
	return device.Info{
		Kind:      device.KindChip,
		Transport: "sim",
		Serial:    c.Serial(),
		Model:     c.opts.Profile.Model(),
		Firmware:  firmwareVersionStr,
	}
}

// Profile returns what the chip speaks (Options.Profile).
func (c *Chip) Profile() Profile { return c.opts.Profile }

// Protocols returns the protocols of the chip's profile, for the transports
// that serve it (device.ProtocolReporter).
func (c *Chip) Protocols() device.Protocols { return c.opts.Profile.Protocols() }

// PowerCycle unplugs and replugs the chip: requests waiting for presence
// end with CTAP2_ERR_KEEPALIVE_CANCEL, the getNextAssertion state is
// dropped, a pending touch is forgotten, and the reset window starts again.
// Credentials stay.
func (c *Chip) PowerCycle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	close(c.power)
	c.power = make(chan struct{})
	c.next = nil
	c.touchedAt = time.Time{}
	c.poweredAt = c.now()
}

// Close switches the chip off: requests waiting for presence end, and later
// calls fail with an error wrapping device.ErrClosed. A chip made by Open
// writes its state a last time. Close waits for the waiting requests to
// return; it returns an error if any were waiting (a caller left a request
// running) or if the state cannot be written. Closing twice returns nil.
func (c *Chip) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	waiting := c.nwait
	close(c.closing)
	c.mu.Unlock()
	c.waiters.Wait()

	c.mu.Lock()
	err := c.persistLocked()
	c.mu.Unlock()
	if waiting > 0 {
		err = errors.Join(fmt.Errorf("chip: closed while %d request(s) waited for presence", waiting), err)
	}
	return err
}

// begin starts a command other than getNextAssertion: it drops the
// getNextAssertion state (CTAP 2.1 §6.3: any other command discards it).
// It returns an error wrapping device.ErrClosed after Close.
func (c *Chip) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	c.next = nil
	return nil
}

// residentCount returns how many slots are in use. c.mu is held.
func (st *state) residentCount() int {
	n := 0
	for _, cr := range st.creds {
		if cr.resident {
			n++
		}
	}
	return n
}

// add stores a new credential. c.mu is held.
func (st *state) add(cr *credential) {
	st.creds = append(st.creds, cr)
	st.credByID[string(cr.id)] = cr
}

// remove deletes a credential. c.mu is held.
func (st *state) remove(cr *credential) {
	delete(st.credByID, string(cr.id))
	for i, x := range st.creds {
		if x == cr {
			st.creds = append(st.creds[:i], st.creds[i+1:]...)
			return
		}
	}
}

// newCredential derives the next credential's key pair and ID. c.mu is held.
func (st *state) newCredential() (*credential, error) {
	n := st.created + 1
	if st.prk == nil {
		st.prk = extract(st.seed)
	}
	key, id, err := st.prk.credential(n)
	if err != nil {
		return nil, err
	}
	if _, dup := st.credByID[string(id)]; dup {
		return nil, errors.New("chip: derived a credential ID twice")
	}
	st.created = n
	return &credential{id: id, key: key, seq: n}, nil
}
