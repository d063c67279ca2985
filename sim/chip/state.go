package chip

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/authbench/authbench/device/ctap2"
)

// stateVersion is the version of the saved state format.
const stateVersion = 1

// stateWarning heads every saved state.
const stateWarning = "authbench simulated chip: contains private keys in the clear; for tests only"

// stateFile is the saved form of a chip (JSON; []byte fields are base64).
// It holds the private keys and the seed: a simulated chip has no secure
// element, and a copy of the file is a perfect clone of the chip.
type stateFile struct {
	Comment         string      `json:"comment"`
	Version         int         `json:"version"`
	Seed            []byte      `json:"seed"`
	Serial          string      `json:"serial"`
	AAGUID          []byte      `json:"aaguid"`
	Slots           int         `json:"slots"`
	AttestationKey  []byte      `json:"attestation_key"`  // raw P-256 scalar
	AttestationCert []byte      `json:"attestation_cert"` // DER
	Created         uint64      `json:"credentials_created"`
	Credentials     []savedCred `json:"credentials"`
}

type savedCred struct {
	ID              []byte `json:"id"`
	Key             []byte `json:"key"` // raw P-256 scalar
	RPID            string `json:"rp_id,omitempty"`
	RPIDHash        []byte `json:"rp_id_hash"`
	Resident        bool   `json:"resident,omitempty"`
	UserID          []byte `json:"user_id,omitempty"`
	UserName        string `json:"user_name,omitempty"`
	UserDisplayName string `json:"user_display_name,omitempty"`
	U2F             bool   `json:"u2f,omitempty"`
	Counter         uint32 `json:"counter"`
	Seq             uint64 `json:"seq"`
}

// encodeLocked returns the saved form of the chip's state. c.mu is held.
func (c *Chip) encodeLocked() ([]byte, error) {
	st := c.st
	f := stateFile{
		Comment:         stateWarning,
		Version:         stateVersion,
		Seed:            st.seed,
		Serial:          st.serial,
		AAGUID:          st.aaguid[:],
		Slots:           st.slots,
		AttestationKey:  st.attKey,
		AttestationCert: st.attCert,
		Created:         st.created,
		Credentials:     make([]savedCred, 0, len(st.creds)),
	}
	for _, cr := range st.creds {
		key, err := cr.key.Bytes()
		if err != nil {
			return nil, fmt.Errorf("chip: save: %w", err)
		}
		s := savedCred{
			ID:       cr.id,
			Key:      key,
			RPID:     cr.rpID,
			RPIDHash: cr.rpIDHash[:],
			Resident: cr.resident,
			U2F:      cr.u2f,
			Counter:  cr.counter,
			Seq:      cr.seq,
		}
		if cr.user != nil {
			s.UserID, s.UserName, s.UserDisplayName = cr.user.ID, cr.user.Name, cr.user.DisplayName
		}
		f.Credentials = append(f.Credentials, s)
	}
	b, err := json.MarshalIndent(&f, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("chip: save: %w", err)
	}
	return append(b, '\n'), nil
}

// Save writes the chip's state (identity, attestation key and certificate,
// credentials with their private keys and counters) as JSON. Loading it gives
// a chip that behaves exactly the same, a clone. It returns the error of w.
func (c *Chip) Save(w io.Writer) error {
	c.mu.Lock()
	b, err := c.encodeLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("chip: save: %w", err)
	}
	return nil
}

// maxStateSize bounds what Load reads (a chip with a million credentials
// is far below it).
const maxStateSize = 1 << 30

// Load makes a chip from state written by Save. The identity (serial,
// AAGUID), slot count, attestation key and certificate and credentials come
// from the state; opts supplies the rest (profile, presence, clock, faults,
// and whether the chip answers with self or none attestation instead of its
// certificate); opts.Seed, opts.Serial, opts.Slots and opts.CA are ignored,
// and so is the difference between AttestationBatch and AttestationSerial. The chip is freshly
// powered. It returns an error for malformed state or another version.
func Load(r io.Reader, opts Options) (*Chip, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxStateSize))
	if err != nil {
		return nil, fmt.Errorf("chip: load: %w", err)
	}
	st, err := decodeState(b)
	if err != nil {
		return nil, err
	}
	return newChip(st, opts)
}

func decodeState(b []byte) (*state, error) {
	var f stateFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("chip: load: %w", err)
	}
	if f.Version != stateVersion {
		return nil, fmt.Errorf("chip: load: state version %d, want %d", f.Version, stateVersion)
	}
	if len(f.Seed) == 0 || f.Serial == "" || len(f.AAGUID) != 16 || f.Slots <= 0 {
		return nil, errors.New("chip: load: seed, serial, aaguid or slots missing")
	}
	if _, err := ecdsa.ParseRawPrivateKey(p256, f.AttestationKey); err != nil {
		return nil, fmt.Errorf("chip: load: attestation key: %w", err)
	}
	st := &state{
		seed:     f.Seed,
		serial:   f.Serial,
		slots:    f.Slots,
		attKey:   f.AttestationKey,
		attCert:  f.AttestationCert,
		created:  f.Created,
		credByID: map[string]*credential{},
	}
	copy(st.aaguid[:], f.AAGUID)
	var last uint64
	for i, s := range f.Credentials {
		key, err := ecdsa.ParseRawPrivateKey(p256, s.Key)
		if err != nil {
			return nil, fmt.Errorf("chip: load: credential %d: %w", i, err)
		}
		if len(s.ID) == 0 || len(s.RPIDHash) != 32 || s.Seq <= last || s.Seq > f.Created {
			return nil, fmt.Errorf("chip: load: credential %d: bad id, rp_id_hash or seq", i)
		}
		if _, dup := st.credByID[string(s.ID)]; dup {
			return nil, fmt.Errorf("chip: load: credential %d: duplicate id", i)
		}
		last = s.Seq
		cr := &credential{
			id:       s.ID,
			key:      key,
			rpID:     s.RPID,
			resident: s.Resident,
			u2f:      s.U2F,
			counter:  s.Counter,
			seq:      s.Seq,
		}
		copy(cr.rpIDHash[:], s.RPIDHash)
		if s.RPID != "" && ctap2.RPIDHash(s.RPID) != cr.rpIDHash {
			return nil, fmt.Errorf("chip: load: credential %d: rp_id_hash does not match rp_id", i)
		}
		if s.Resident {
			if len(s.UserID) == 0 {
				return nil, fmt.Errorf("chip: load: resident credential %d without user_id", i)
			}
			cr.user = &ctap2.UserEntity{ID: s.UserID, Name: s.UserName, DisplayName: s.UserDisplayName}
		}
		st.add(cr)
	}
	if st.residentCount() > st.slots {
		return nil, fmt.Errorf("chip: load: %d resident credentials in %d slots", st.residentCount(), st.slots)
	}
	return st, nil
}

// Open returns the chip saved in the file at path, or, when there is no
// such file, a new chip made with opts and saved there. Either way the chip
// writes its state back to the file after every change (a new credential, a
// counter, a reset), atomically, so a simulated physical chip survives
// restarts. Copying the file makes a clone. It returns the errors of Load
// and New, and file system errors.
func Open(path string, opts Options) (*Chip, error) {
	b, err := os.ReadFile(path)
	var c *Chip
	switch {
	case err == nil:
		st, err := decodeState(b)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, path)
		}
		if c, err = newChip(st, opts); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
		if c, err = New(opts); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("chip: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.path = path
	if err := c.persistLocked(); err != nil {
		return nil, err
	}
	return c, nil
}

// persistLocked writes the state to c.path, if any, through a temporary file
// and a rename. c.mu is held.
func (c *Chip) persistLocked() error {
	if c.path == "" {
		return nil
	}
	b, err := c.encodeLocked()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), "."+filepath.Base(c.path)+".*")
	if err != nil {
		return fmt.Errorf("chip: save: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("chip: save: %w", err)
	}
	return nil
}
