package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/authbench/authbench/device/apdu"
	"github.com/authbench/authbench/driver/pcsc"
	"github.com/authbench/authbench/sim/chip"
)

// apduCmd is `authbench apdu`.
type apduCmd struct {
	Device  string        `required:"" placeholder:"pcsc:N|pcsc:READER|sim:chip" help:"The card: in a PC/SC reader (pcsc:N counts readers from 0, as authbench devices lists them), or sim:chip[:u2f|ctap2] for a simulated chip in this process."`
	APDUs   []string      `arg:"" name:"apdu" placeholder:"HEX" help:"Command APDUs in hex, one per argument (spaces and colons inside an argument are ignored: \"00 A4 04 00 08 A0000006472F0001\"), sent in order."`
	Timeout time.Duration `default:"10s" placeholder:"DURATION" help:"Limit for each APDU."`
	JSON    bool          `help:"Print the exchanges as JSON."`
}

// Help is the detail of `authbench help apdu`.
func (*apduCmd) Help() string {
	return "Sends the APDUs as they are, inside one PC/SC transaction, and prints each answer with its status word " +
		"in words, as opensc-tool -s does. Nothing is done for you: no applet is selected (the FIDO applet: " +
		"00A4040008A0000006472F0001), 61xx is not followed by GET RESPONSE (send 00C00000xx), 9100 not polled " +
		"(send 80110000). Exit status 0 when every APDU got an answer, whatever its status word; 3 when the card " +
		"cannot be reached or leaves."
}

// apduExchange is one APDU and its answer, for --json.
type apduExchange struct {
	Command  string `json:"command"`
	Response string `json:"response"` // the data, without the status word
	SW       string `json:"sw"`
	Meaning  string `json:"meaning"`
}

// apduReport is what `authbench apdu --json` prints.
type apduReport struct {
	Device    string         `json:"device"`
	Reader    string         `json:"reader,omitempty"`
	ATR       string         `json:"atr,omitempty"`
	Exchanges []apduExchange `json:"exchanges"`
}

// rawCard is what apdu sends APDUs to.
type rawCard interface {
	Transmit(ctx context.Context, cmd []byte) ([]byte, error)
}

func (c *apduCmd) Run(ctx context.Context, e *env) error {
	cmds := make([][]byte, len(c.APDUs))
	for i, a := range c.APDUs {
		b, err := hex.DecodeString(strings.NewReplacer(" ", "", ":", "", "\t", "").Replace(a))
		switch {
		case err != nil:
			return usageError{fmt.Errorf("APDU %d (%q) is not hex: %v", i+1, a, err)}
		case len(b) < 4:
			return usageError{fmt.Errorf("APDU %d (%q) has %d bytes: a command APDU has at least CLA INS P1 P2", i+1, a, len(b))}
		}
		cmds[i] = b
	}
	rep := apduReport{Device: c.Device, Exchanges: []apduExchange{}}
	card, closeCard, err := c.open(ctx, &rep)
	if err != nil {
		return err
	}
	defer closeCard()
	if !c.JSON {
		if rep.Reader != "" {
			fmt.Fprintf(e.stdout, "reader %q, ATR %s\n", rep.Reader, rep.ATR)
		}
	}
	for _, cmd := range cmds {
		tctx, cancel := context.WithTimeout(ctx, c.Timeout)
		resp, err := card.Transmit(tctx, cmd)
		cancel()
		if !c.JSON {
			fmt.Fprintf(e.stdout, "> % X\n", cmd)
		}
		if err != nil {
			if c.JSON {
				printJSON(e.stdout, rep)
			}
			if errors.Is(context.Cause(ctx), errInterrupted) {
				return errInterrupted
			}
			return unreachableError{fmt.Errorf("%s: APDU % X: %w", c.Device, cmd, err)}
		}
		x := exchangeOf(cmd, resp)
		rep.Exchanges = append(rep.Exchanges, x)
		if !c.JSON {
			printExchange(e.stdout, resp, x)
		}
	}
	if c.JSON {
		return printJSON(e.stdout, rep)
	}
	return nil
}

// open opens the card a selector names.
func (c *apduCmd) open(ctx context.Context, rep *apduReport) (rawCard, func(), error) {
	kind, arg, _ := strings.Cut(c.Device, ":")
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	switch kind {
	case "pcsc":
		pc, err := pcsc.Open(octx, pcsc.Options{})
		if err != nil {
			return nil, nil, unreachableError{explainDevice(c.Device, err)}
		}
		defer pc.Close()
		name := arg
		if n, err := strconv.Atoi(arg); err == nil {
			readers, err := pc.Readers(octx)
			if err != nil {
				return nil, nil, unreachableError{explainDevice(c.Device, err)}
			}
			if n < 0 || n >= len(readers) {
				return nil, nil, unreachableError{fmt.Errorf("pcsc:%d: there are %d readers (authbench devices lists them)", n, len(readers))}
			}
			name = readers[n].Name
		}
		cd, err := pc.OpenCard(octx, name)
		if err != nil {
			return nil, nil, unreachableError{explainDevice(c.Device, err)}
		}
		rep.Reader, rep.ATR = name, fmt.Sprintf("% X", cd.ATR())
		return cd, func() { cd.Close() }, nil
	case "sim":
		simKind, profile, _ := strings.Cut(arg, ":")
		if simKind != "chip" {
			return nil, nil, usageError{fmt.Errorf("--device %s: only chips take APDUs (sim:chip)", c.Device)}
		}
		opts := chip.Options{Seed: []byte("authbench apdu")}
		if profile != "" {
			p, err := chip.ParseProfile(profile)
			if err != nil {
				return nil, nil, usageError{fmt.Errorf("%s: %v", c.Device, err)}
			}
			opts.Profile = p
		}
		ch, err := chip.New(opts)
		if err != nil {
			return nil, nil, err
		}
		card := apdu.NewCard(ch, apdu.CardOptions{})
		return simCard{card}, func() { card.Close(); ch.Close() }, nil
	}
	return nil, nil, usageError{fmt.Errorf("--device %q: want pcsc:N, pcsc:READER or sim:chip", c.Device)}
}

// simCard sends APDUs to a simulated card in this process.
type simCard struct{ c *apdu.Card }

func (s simCard) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	return s.c.Process(ctx, cmd), nil
}

// exchangeOf splits an answer into data and status word, and says what
// the status word means.
func exchangeOf(cmd, resp []byte) apduExchange {
	x := apduExchange{Command: fmt.Sprintf("%X", cmd)}
	if len(resp) < 2 {
		x.Response = fmt.Sprintf("%X", resp)
		x.Meaning = "no status word: not a response APDU"
		return x
	}
	data, sw := resp[:len(resp)-2], uint16(resp[len(resp)-2])<<8|uint16(resp[len(resp)-1])
	x.Response, x.SW, x.Meaning = fmt.Sprintf("%X", data), fmt.Sprintf("%04X", sw), swMeaning(sw)
	return x
}

// swMeaning says a status word in words (ISO/IEC 7816-4 §5.6, CTAP 2.1
// §11.3, FIDO U2F Raw Message Formats §3.3), with what to send next where
// the card expects something.
func swMeaning(sw uint16) string {
	s := apdu.StatusText(sw)
	switch {
	case sw&0xFF00 == apdu.SWBytesRemaining:
		n := int(sw & 0xFF)
		if n == 0 {
			n = 256
		}
		return fmt.Sprintf("%s: fetch them with GET RESPONSE 00 C0 00 00 %02X", s, byte(n))
	case sw&0xFF00 == apdu.SWWrongLe:
		return fmt.Sprintf("%s: send the command again with Le = %02X", s, byte(sw))
	case sw == apdu.SWStatusUpdate:
		return s + ": poll with NFCCTAP_GETRESPONSE 80 11 00 00"
	case sw == apdu.SWConditionsNotSatisfied:
		return s + " (U2F: touch the chip and send it again)"
	case sw == apdu.SWWrongData:
		return s + " (U2F: the key handle is not this chip's)"
	case s == "":
		switch sw >> 8 {
		case 0x62, 0x63:
			return "warning"
		case 0x64, 0x65, 0x66:
			return "execution error"
		case 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F:
			return "checking error"
		}
		return "not an ISO/IEC 7816-4 status word"
	}
	return s
}

// printExchange writes one answer as `authbench apdu` shows it.
func printExchange(w io.Writer, resp []byte, x apduExchange) {
	if len(resp) > 2 {
		data := resp[:len(resp)-2]
		text := ""
		if printable(data) {
			text = fmt.Sprintf("  (%q)", data)
		}
		fmt.Fprintf(w, "< % X%s\n", data, text)
	}
	if x.SW == "" {
		fmt.Fprintf(w, "< % X: %s\n", resp, x.Meaning)
		return
	}
	fmt.Fprintf(w, "  SW %s: %s\n", x.SW, x.Meaning)
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7E {
			return false
		}
	}
	return len(b) > 0
}
