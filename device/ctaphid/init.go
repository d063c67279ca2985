package ctaphid

import (
	"encoding/binary"
	"fmt"

	"github.com/authbench/authbench/device"
)

// NonceSize is the length of the CTAPHID_INIT nonce (CTAP 2.1 §11.2.9.1.3).
const NonceSize = 8

// InitResponseSize is the length of the CTAPHID_INIT response data.
const InitResponseSize = 17

// DeviceInfo is what a device says about itself in its INIT response
// (CTAP 2.1 §11.2.9.1.3).
type DeviceInfo struct {
	ProtocolVersion byte // CTAPHID protocol version, 2 for CTAP 2.x devices
	Major           byte // device version number, major
	Minor           byte // device version number, minor
	Build           byte // device version number, build
	Capabilities    Capabilities
}

// InitResponse is the data of a CTAPHID_INIT response
// (CTAP 2.1 §11.2.9.1.3): the host's nonce echoed, the channel the device
// allocated (or the resynchronized channel), and the device's versions and
// capability flags.
type InitResponse struct {
	Nonce [NonceSize]byte
	CID   uint32
	DeviceInfo
}

// ParseInitResponse decodes INIT response data. It returns an error
// wrapping device.ErrProtocol unless b is exactly InitResponseSize bytes.
func ParseInitResponse(b []byte) (*InitResponse, error) {
	if len(b) != InitResponseSize {
		return nil, fmt.Errorf("ctaphid: %w: INIT response of %d bytes, want %d", device.ErrProtocol, len(b), InitResponseSize)
	}
	r := &InitResponse{CID: binary.BigEndian.Uint32(b[8:12])}
	copy(r.Nonce[:], b[:8])
	r.ProtocolVersion = b[12]
	r.Major, r.Minor, r.Build = b[13], b[14], b[15]
	r.Capabilities = Capabilities(b[16])
	return r, nil
}

// Encode returns the InitResponseSize bytes of r.
func (r *InitResponse) Encode() []byte {
	b := make([]byte, InitResponseSize)
	copy(b, r.Nonce[:])
	binary.BigEndian.PutUint32(b[8:12], r.CID)
	b[12] = r.ProtocolVersion
	b[13], b[14], b[15] = r.Major, r.Minor, r.Build
	b[16] = byte(r.Capabilities)
	return b
}
