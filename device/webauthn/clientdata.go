package webauthn

import (
	"encoding/json"
)

// MaxClientData bounds the clientDataJSON a relying party reads. A
// browser's is 130 to 300 bytes.
const MaxClientData = 4 << 10

// ClientData is CollectedClientData (WebAuthn Level 3 §5.8.1). Its JSON
// encoding puts the members in the order of §5.8.1.1 (type, challenge,
// origin, crossOrigin, topOrigin), which is what a browser sends; members
// a browser adds beyond these are ignored when parsing.
type ClientData struct {
	Type        string `json:"type"`      // TypeCreate or TypeGet
	Challenge   string `json:"challenge"` // base64url of the relying party's challenge
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
	TopOrigin   string `json:"topOrigin,omitempty"`
}

// NewClientData returns clientDataJSON as a client platform serialises it
// (WebAuthn Level 3 §5.8.1.1) for a ceremony of type typ (TypeCreate or
// TypeGet) with the relying party's challenge, from a same-origin context
// at origin.
func NewClientData(typ string, challenge []byte, origin string) []byte {
	b, err := json.Marshal(ClientData{Type: typ, Challenge: Encode(challenge), Origin: origin})
	if err != nil {
		panic("webauthn: client data: " + err.Error()) // strings and a bool only
	}
	return b
}

// ParseClientData decodes clientDataJSON (WebAuthn Level 3 §5.8.1). It
// returns nil and an error wrapping ErrInvalid when b is larger than
// MaxClientData or not a JSON object with string members type, challenge
// and origin, or when it has a tokenBinding member without a valid status.
func ParseClientData(b []byte) (*ClientData, error) {
	if len(b) > MaxClientData {
		return nil, invalidf("clientDataJSON is larger than %d bytes", MaxClientData)
	}
	in := new(clientDataIn)
	if err := json.Unmarshal(b, in); err != nil {
		return nil, invalidf("clientDataJSON is not a client data object")
	}
	c := &in.ClientData
	if c.Type == "" || c.Challenge == "" || c.Origin == "" {
		return nil, invalidf("clientDataJSON lacks type, challenge or origin")
	}
	if tb := in.TokenBinding; tb != nil {
		switch tb.Status {
		case "present", "supported", "not-supported":
		default:
			return nil, invalidf("clientDataJSON has a tokenBinding whose status is not present, supported or not-supported")
		}
	}
	return c, nil
}

// clientDataIn is what ParseClientData reads: ClientData, and
// tokenBinding (WebAuthn Level 2 §5.8.1, gone from Level 3), which is not
// used, but must be well formed when present.
type clientDataIn struct {
	ClientData
	TokenBinding *struct {
		Status string `json:"status"`
		ID     string `json:"id"`
	} `json:"tokenBinding"`
}
