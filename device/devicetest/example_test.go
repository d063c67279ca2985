package devicetest_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/authbench/authbench/device/devicetest"
	"github.com/authbench/authbench/sim/chip"
)

// Run the chip suite against a simulated chip in-process and print the
// outcome of each check, as `authbench check` does for a bench.
func ExampleRunSuite() {
	c, err := chip.New(chip.Options{Seed: []byte("example")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	// The test CA's certificate is the root of the simulator's attestation.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(chip.TestCACertPEM())
	rep := devicetest.RunSuite(context.Background(), devicetest.ChipSuite(devicetest.ChipOptions{Roots: roots}), c, devicetest.RunOptions{})
	for _, r := range rep.Results {
		fmt.Printf("%-36s %s\n", r.Name, r.Status)
	}
	if !rep.Passed() {
		devicetest.WriteMarkdown(os.Stdout, rep)
	}
	// Output:
	// info.fields                          pass
	// info.canonical                       pass
	// transport.profile                    skip
	// makecredential.authdata              pass
	// makecredential.attestation           pass
	// getassertion.signature               pass
	// getassertion.counter                 pass
	// getassertion.unknown-credential      pass
	// makecredential.exclude-list          pass
	// makecredential.unsupported-algorithm pass
	// makecredential.long-message          pass
	// error.client-data-hash-length        pass
	// error.missing-parameter              pass
	// error.pin-uv-auth-param              pass
	// error.wrong-type                     pass
	// error.invalid-command                pass
	// error.next-without-assertion         pass
	// resident.replace                     pass
	// getassertion.next                    pass
	// cancel.presence                      skip
	// u2f.version                          pass
	// u2f.register-authenticate            pass
	// u2f.check-only                       pass
	// u2f.errors                           pass
	// selection                            pass
	// reset                                skip
}
