package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/alecthomas/kong"
)

// versionCmd is `authbench version`.
type versionCmd struct {
	JSON bool `help:"Print the version as JSON."`
}

// versionInfo is what `authbench version --json` prints.
type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func currentVersion() versionInfo {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return versionInfo{Version: v, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

// versionString is the one line `authbench version` and --version print.
func versionString() string {
	v := currentVersion()
	return fmt.Sprintf("authbench %s %s %s/%s", v.Version, v.Go, v.OS, v.Arch)
}

func (c *versionCmd) Run(e *env) error {
	if c.JSON {
		return printJSON(e.stdout, currentVersion())
	}
	fmt.Fprintln(e.stdout, versionString())
	return nil
}

// versionFlag is --version: it prints the version and ends the program
// with status 0 before anything else is checked.
type versionFlag bool

func (versionFlag) BeforeReset(app *kong.Kong) error {
	fmt.Fprintln(app.Stdout, versionString())
	app.Exit(0)
	return nil
}

// envSet reports whether the environment variable name is set and not
// empty.
func envSet(name string) bool { return os.Getenv(name) != "" }
