package apdu_test

import (
	"context"
	"fmt"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/device/ctap2"
)

// The messengers of the layers above, as the shared contracts declare them.
var (
	_ ctap2.Messenger = (*apdu.Client)(nil)
	_ interface {
		APDU(context.Context, []byte) ([]byte, error)
	} = (*apdu.Client)(nil) // u2f.Messenger
)

// A Card is itself a Transmitter, so a Client can talk to a simulated chip
// in-process, with the same bytes it would send through PC/SC. The test
// handler speaks U2F and CTAP2, so SELECT answers U2F_V2 (CTAP 2.1 §11.3.3)
// and getInfo tells that it speaks CTAP2 too.
func Example() {
	card := apdu.NewCard(&testHandler{}, apdu.CardOptions{})
	defer card.Close()
	c := apdu.NewClient(card, apdu.ClientOptions{})
	ctx := context.Background()

	version, err := c.Select(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	info, err := c.CBOR(ctx, []byte{ctap2.CmdGetInfo})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s, getInfo status %#02x, %d bytes of CBOR\n", version, info[0], len(info)-1)

	_, err = c.CBOR(ctx, []byte{}) // nothing to send
	fmt.Println(err)
	// Output:
	// U2F_V2, getInfo status 0x00, 41 bytes of CBOR
	// apdu: empty CTAP2 request: protocol violation
}
