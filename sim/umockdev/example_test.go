package umockdev_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/authbench/authbench/sim/chip"
	"github.com/authbench/authbench/sim/umockdev"
)

// A simulated chip plugged into an emulated USB bus, and libfido2's
// fido2-token run with the bus in its environment. (Not run as a test: it
// needs umockdev and fido2-tools; see TestFido2Tools.)
func ExampleStart() {
	c, err := chip.New(chip.Options{Seed: []byte("example")})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	bus, err := umockdev.Start(context.Background(), []umockdev.Key{{Chip: c, Serial: c.Serial()}}, umockdev.Options{})
	if err != nil {
		panic(err) // wraps umockdev.ErrMissing when the Debian packages are missing
	}
	defer bus.Close()
	fmt.Println(bus.Devices()[0].Hidraw, bus.Devices()[0].Path)

	cmd := exec.Command("fido2-token", "-L")
	cmd.Env = bus.Environ(os.Environ())
	out, err := cmd.Output()
	if err != nil {
		panic(err)
	}
	fmt.Print(string(out))
	// /dev/hidraw0 1-1:1.0
	// /dev/hidraw0: vendor=0x1209, product=0x0001 (authbench authbench simulated chip)
}
