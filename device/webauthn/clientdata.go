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
// and origin.
func ParseClientData(b []byte) (*ClientData, error) {
	if len(b) > MaxClientData {
		return nil, invalidf("clientDataJSON is larger than %d bytes", MaxClientData)
	}
	var c ClientData
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, invalidf("clientDataJSON is not a client data object")
	}
	if c.Type == "" || c.Challenge == "" || c.Origin == "" {
		return nil, invalidf("clientDataJSON lacks type, challenge or origin")
	}
	return &c, nil
}
