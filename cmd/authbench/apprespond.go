package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/authbench/authbench/sim/app"
)

// appCmd is `authbench app`: the simulated MitID app as a phone would
// use it.
type appCmd struct {
	Respond appRespondCmd `cmd:"" help:"Answer a login's transfer code as the simulated MitID app: print the app's signature over the challenge, to paste into the login page."`
}

// appRespondCmd is `authbench app respond`.
type appRespondCmd struct {
	AppSeedFile string `name:"app-seed-file" placeholder:"FILE" type:"existingfile" help:"File holding, in hex, the seed of the simulated MitID app (sim/app) whose device key signs; without it, $AUTHBENCH_APP_SEED holds the hex."`
	Challenge   string `placeholder:"CODE" help:"The transfer code the login page shows (the challenge, unpadded base64url); without it, the first line of standard input."`
	JSON        bool   `help:"Print the response as JSON."`
}

// appResponse is what `authbench app respond --json` prints.
type appResponse struct {
	Challenge string `json:"challenge"`
	Response  string `json:"response"` // the signature, DER, unpadded base64url
}

// maxChallenge bounds the transfer code read from standard input.
const maxChallenge = 4096

func (c *appRespondCmd) Run(e *env) error {
	seed, err := readHexSecret(c.AppSeedFile, appSeedEnv)
	if err != nil {
		return err
	}
	if seed == nil {
		return usageError{errors.New("the app's seed goes in --app-seed-file FILE (hex), or in $AUTHBENCH_APP_SEED")}
	}
	code := c.Challenge
	if code == "" {
		line, err := bufio.NewReader(io.LimitReader(e.in(), maxChallenge)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the transfer code from standard input: %w", err)
		}
		code = line
	}
	code = strings.TrimSpace(code)
	if code == "" {
		return usageError{errors.New("give the transfer code the login page shows with --challenge CODE, or on the first line of standard input")}
	}
	challenge, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(code, "="))
	if err != nil {
		return usageError{fmt.Errorf("the transfer code is not unpadded base64url (copy it whole from the login page): %v", err)}
	}
	a, err := app.New(app.Options{Seed: seed})
	if err != nil {
		return err
	}
	sig, err := a.Sign(challenge)
	if err != nil {
		return err
	}
	res := appResponse{Challenge: code, Response: base64.RawURLEncoding.EncodeToString(sig)}
	if c.JSON {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintln(e.stdout, res.Response)
	return nil
}
