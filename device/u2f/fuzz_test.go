package u2f

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/authbench/authbench/device/apdu"
)

func FuzzParseRegisterRequest(f *testing.F) {
	f.Add(readHex(f, "register_request.hex"))
	f.Add(make([]byte, 64))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRegisterRequest(b)
		if err != nil {
			if r != nil {
				t.Fatal("value returned with an error")
			}
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatalf("round trip: % X", b)
		}
	})
}

func FuzzParseRegisterResponse(f *testing.F) {
	reg := readHex(f, "register_response.hex")
	f.Add(reg)
	f.Add(reg[:len(reg)-1])
	f.Add(append(append([]byte{}, reg[:66]...), 0, 0x30, 0x00, 0x30, 0x06, 2, 1, 1, 2, 1, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRegisterResponse(b)
		if err != nil {
			var fe *FormatError
			if r != nil || !errors.As(err, &fe) {
				t.Fatalf("%v, %v", r, err)
			}
			return
		}
		enc, err := r.Encode()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("round trip: %v\n in % X\nout % X", err, b, enc)
		}
	})
}

func FuzzParseAuthenticateRequest(f *testing.F) {
	raw := readHex(f, "authenticate_request.hex")
	f.Add(raw[0], raw[1:])
	f.Add(ControlCheckOnly, append(make([]byte, 64), 0))
	f.Add(byte(0), []byte{})
	f.Fuzz(func(t *testing.T, control byte, data []byte) {
		r, err := ParseAuthenticateRequest(control, data)
		if err != nil {
			if r != nil {
				t.Fatal("value returned with an error")
			}
			return
		}
		enc, err := r.Encode()
		if err != nil || !bytes.Equal(enc, data) || r.Control != control {
			t.Fatalf("round trip: %v\n in % X\nout % X", err, data, enc)
		}
	})
}

func FuzzParseAuthenticateResponse(f *testing.F) {
	f.Add(readHex(f, "authenticate_response.hex"))
	f.Add([]byte{1, 0, 0, 0, 1, 0x30, 0x06, 2, 1, 1, 2, 1, 1})
	f.Add([]byte{1, 0, 0, 0, 1, 0x30, 0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseAuthenticateResponse(b)
		if err != nil {
			if r != nil {
				t.Fatal("value returned with an error")
			}
			return
		}
		enc, err := r.Encode()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("round trip: %v\n in % X\nout % X", err, b, enc)
		}
	})
}

// FuzzServeU2F feeds arbitrary request bytes to a Handler. The authenticator
// answers from the spec examples, or with an error chosen by the first data
// byte, so that every branch is reachable.
func FuzzServeU2F(f *testing.F) {
	rresp, err := ParseRegisterResponse(readHex(f, "register_response.hex"))
	if err != nil {
		f.Fatal(err)
	}
	aresp := mustParseAS(f, readHex(f, "authenticate_response.hex"))
	areq := readHex(f, "authenticate_request.hex")
	regCmd := (&RegisterRequest{}).Command()
	regCmd.Data = readHex(f, "register_request.hex")
	authCmd := &apdu.Command{INS: InsAuthenticate, P1: areq[0], Data: areq[1:], Ne: apdu.MaxExtendedNe}
	for _, c := range []*apdu.Command{regCmd, authCmd, {INS: InsVersion, Ne: apdu.MaxExtendedNe}} {
		ext, err := c.EncodeExtended()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ext)
		if short, err := c.Encode(); err == nil {
			f.Add(short)
		}
	}
	f.Add([]byte{0, 3, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x80, 0x10, 0, 0})
	f.Add([]byte{})
	errs := []error{nil, ErrPresenceRequired, ErrBadKeyHandle, ErrWrongLength, &StatusError{SW: 0x6A84}, context.Canceled}

	f.Fuzz(func(t *testing.T, req []byte) {
		fa := &fixedAuthenticator{rresp: rresp, aresp: aresp}
		cmd, perr := apdu.ParseCommand(req)
		if perr == nil && len(cmd.Data) > 0 {
			fa.err = errs[int(cmd.Data[0])%len(errs)]
		}
		got := NewHandler(fa).ServeU2F(context.Background(), req)
		if len(got) < 2 {
			t.Fatalf("answer % X too short", got)
		}
		sw := binary.BigEndian.Uint16(got[len(got)-2:])
		data := got[:len(got)-2]
		if perr != nil {
			if sw != SWWrongLength {
				t.Fatalf("unparsable APDU answered %04X", sw)
			}
			return
		}
		if cmd.CLA != 0 && sw != SWCLANotSupported {
			t.Fatalf("CLA %02X answered %04X", cmd.CLA, sw)
		}
		if sw != SWNoError {
			if len(data) != 0 {
				t.Fatalf("status %04X with data", sw)
			}
			return
		}
		switch cmd.INS {
		case InsVersion:
			if string(data) != Version {
				t.Fatalf("version %q", data)
			}
		case InsRegister:
			if _, err := ParseRegisterResponse(data); err != nil {
				t.Fatal(err)
			}
		case InsAuthenticate:
			if cmd.P1 == ControlCheckOnly {
				t.Fatal("check-only request answered 9000")
			}
			if _, err := ParseAuthenticateResponse(data); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("INS %02X answered 9000", cmd.INS)
		}
	})
}
