package secrets

import (
	"errors"
	"testing"
)

func TestCheckPIN(t *testing.T) {
	tests := []struct {
		pin  string
		want error
	}{
		{"314159", nil},
		{"918273", nil},
		{"001122", nil},
		{"123457", nil},
		{"890123", nil}, // a run that wraps around is allowed
		{"112211", nil},
		{"000000", ErrWeakPIN},
		{"999999", ErrWeakPIN},
		{"123456", ErrWeakPIN},
		{"012345", ErrWeakPIN},
		{"456789", ErrWeakPIN},
		{"654321", ErrWeakPIN},
		{"987654", ErrWeakPIN},
		{"121212", ErrWeakPIN},
		{"909090", ErrWeakPIN},
		{"123123", ErrWeakPIN},
		{"786786", ErrWeakPIN},
		{"", ErrBadPIN},
		{"12345", ErrBadPIN},
		{"1234567", ErrBadPIN},
		{"12345a", ErrBadPIN},
		{" 31415", ErrBadPIN},
		{"31415\n", ErrBadPIN},
		{"３１４１５９", ErrBadPIN}, // full-width digits
		{"٣١٤١٥٩", ErrBadPIN}, // Arabic-Indic digits
		{"-31415", ErrBadPIN},
	}
	for _, tt := range tests {
		t.Run(tt.pin, func(t *testing.T) {
			err := CheckPIN(tt.pin)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("CheckPIN(%q) = %v; want %v", tt.pin, err, tt.want)
			}
		})
	}
	// How many PINs are refused: 10 repeated digits, 5+5 runs, 90 pairs
	// and 990 triples that are not repeated digits (less the overlaps).
	weak := 0
	pin := []byte("000000")
	for range 1000000 {
		if CheckPIN(string(pin)) != nil {
			weak++
		}
		for i := len(pin) - 1; i >= 0; i-- { // the next PIN
			if pin[i]++; pin[i] <= '9' {
				break
			}
			pin[i] = '0'
		}
	}
	if weak != 10+10+90+990 {
		t.Errorf("%d weak PINs", weak)
	}
}

func TestHashVerifyPIN(t *testing.T) {
	enc, err := HashPIN("314159", FastParams())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		pin string
		ok  bool
	}{{"314159", true}, {"314158", false}, {"31415", false}, {"3141590", false}, {"", false}} {
		ok, _, err := VerifyPIN(enc, tt.pin)
		if ok != tt.ok || err != nil {
			t.Errorf("VerifyPIN(%q) = %v, %v", tt.pin, ok, err)
		}
	}
	if _, err := HashPIN("123456", FastParams()); !errors.Is(err, ErrWeakPIN) {
		t.Fatalf("HashPIN(123456) = %v", err)
	}
	if _, err := HashPIN("12a456", FastParams()); !errors.Is(err, ErrBadPIN) {
		t.Fatalf("HashPIN(12a456) = %v", err)
	}
	if ok, _, err := VerifyPIN("garbage", "314159"); ok || !errors.Is(err, ErrBadVerifier) {
		t.Fatalf("VerifyPIN(garbage) = %v, %v", ok, err)
	}
}
