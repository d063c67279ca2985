package serial_test

import (
	"context"
	"fmt"
	"time"

	"github.com/authbench/authbench/device/otp"
	"github.com/authbench/authbench/driver/serial"
	"github.com/authbench/authbench/sim/code"
)

// A simulated code display on a pty, opened like a real one on
// /dev/ttyUSB0: identify it and press its button. Its clock stands at
// T = 59 s with the RFC 6238 test secret (RFC 6238 Appendix B).
func Example() {
	dev, err := code.New(code.Options{
		Secret:    []byte("12345678901234567890"),
		Digits:    8,
		Algorithm: otp.SHA1,
		Now:       func() time.Time { return time.Unix(59, 0) },
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	pty, err := code.ServePTY(ctx, dev)
	if err != nil {
		panic(err)
	}
	defer pty.Close()

	d, err := serial.Open(ctx, pty.Path, serial.Options{})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	fmt.Println(d.Info().Kind, d.Info().Transport)
	c, err := d.Press(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Digits, c.Step)
	// Output:
	// code-display serial
	// 94287082 1
}
