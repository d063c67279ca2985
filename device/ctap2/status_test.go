package ctap2

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// statusTable is CTAP 2.1 §8.2 in full.
var statusTable = []struct {
	code     byte
	name     string
	sentinel error
}{
	{0x01, "CTAP1_ERR_INVALID_COMMAND", ErrInvalidCommand},
	{0x02, "CTAP1_ERR_INVALID_PARAMETER", ErrInvalidParameter},
	{0x03, "CTAP1_ERR_INVALID_LENGTH", ErrInvalidLength},
	{0x04, "CTAP1_ERR_INVALID_SEQ", ErrInvalidSeq},
	{0x05, "CTAP1_ERR_TIMEOUT", ErrTimeout},
	{0x06, "CTAP1_ERR_CHANNEL_BUSY", ErrChannelBusy},
	{0x0A, "CTAP1_ERR_LOCK_REQUIRED", ErrLockRequired},
	{0x0B, "CTAP1_ERR_INVALID_CHANNEL", ErrInvalidChannel},
	{0x11, "CTAP2_ERR_CBOR_UNEXPECTED_TYPE", ErrCBORUnexpectedType},
	{0x12, "CTAP2_ERR_INVALID_CBOR", ErrInvalidCBOR},
	{0x14, "CTAP2_ERR_MISSING_PARAMETER", ErrMissingParameter},
	{0x15, "CTAP2_ERR_LIMIT_EXCEEDED", ErrLimitExceeded},
	{0x17, "CTAP2_ERR_FP_DATABASE_FULL", ErrFPDatabaseFull},
	{0x18, "CTAP2_ERR_LARGE_BLOB_STORAGE_FULL", ErrLargeBlobStorageFull},
	{0x19, "CTAP2_ERR_CREDENTIAL_EXCLUDED", ErrCredentialExcluded},
	{0x21, "CTAP2_ERR_PROCESSING", ErrProcessing},
	{0x22, "CTAP2_ERR_INVALID_CREDENTIAL", ErrInvalidCredential},
	{0x23, "CTAP2_ERR_USER_ACTION_PENDING", ErrUserActionPending},
	{0x24, "CTAP2_ERR_OPERATION_PENDING", ErrOperationPending},
	{0x25, "CTAP2_ERR_NO_OPERATIONS", ErrNoOperations},
	{0x26, "CTAP2_ERR_UNSUPPORTED_ALGORITHM", ErrUnsupportedAlgorithm},
	{0x27, "CTAP2_ERR_OPERATION_DENIED", ErrOperationDenied},
	{0x28, "CTAP2_ERR_KEY_STORE_FULL", ErrKeyStoreFull},
	{0x2B, "CTAP2_ERR_UNSUPPORTED_OPTION", ErrUnsupportedOption},
	{0x2C, "CTAP2_ERR_INVALID_OPTION", ErrInvalidOption},
	{0x2D, "CTAP2_ERR_KEEPALIVE_CANCEL", ErrKeepaliveCancel},
	{0x2E, "CTAP2_ERR_NO_CREDENTIALS", ErrNoCredentials},
	{0x2F, "CTAP2_ERR_USER_ACTION_TIMEOUT", ErrUserActionTimeout},
	{0x30, "CTAP2_ERR_NOT_ALLOWED", ErrNotAllowed},
	{0x31, "CTAP2_ERR_PIN_INVALID", ErrPINInvalid},
	{0x32, "CTAP2_ERR_PIN_BLOCKED", ErrPINBlocked},
	{0x33, "CTAP2_ERR_PIN_AUTH_INVALID", ErrPINAuthInvalid},
	{0x34, "CTAP2_ERR_PIN_AUTH_BLOCKED", ErrPINAuthBlocked},
	{0x35, "CTAP2_ERR_PIN_NOT_SET", ErrPINNotSet},
	{0x36, "CTAP2_ERR_PUAT_REQUIRED", ErrPUATRequired},
	{0x37, "CTAP2_ERR_PIN_POLICY_VIOLATION", ErrPINPolicyViolation},
	{0x39, "CTAP2_ERR_REQUEST_TOO_LARGE", ErrRequestTooLarge},
	{0x3A, "CTAP2_ERR_ACTION_TIMEOUT", ErrActionTimeout},
	{0x3B, "CTAP2_ERR_UP_REQUIRED", ErrUPRequired},
	{0x3C, "CTAP2_ERR_UV_BLOCKED", ErrUVBlocked},
	{0x3D, "CTAP2_ERR_INTEGRITY_FAILURE", ErrIntegrityFailure},
	{0x3E, "CTAP2_ERR_INVALID_SUBCOMMAND", ErrInvalidSubcommand},
	{0x3F, "CTAP2_ERR_UV_INVALID", ErrUVInvalid},
	{0x40, "CTAP2_ERR_UNAUTHORIZED_PERMISSION", ErrUnauthorizedPermission},
	{0x7F, "CTAP1_ERR_OTHER", ErrOther},
}

func TestStatusCodes(t *testing.T) {
	for _, tc := range statusTable {
		t.Run(tc.name, func(t *testing.T) {
			if got := StatusName(tc.code); got != tc.name {
				t.Errorf("StatusName(%#x) = %q", tc.code, got)
			}
			e := &StatusError{Code: tc.code}
			if want := fmt.Sprintf("ctap2: %s (0x%02X)", tc.name, tc.code); e.Error() != want {
				t.Errorf("Error() = %q, want %q", e.Error(), want)
			}
			if !errors.Is(e, tc.sentinel) {
				t.Error("StatusError does not match its sentinel")
			}
			wrapped := fmt.Errorf("sim: %w", tc.sentinel)
			if !errors.Is(wrapped, &StatusError{Code: tc.code}) || !errors.Is(wrapped, tc.sentinel) {
				t.Error("wrapped sentinel does not match")
			}
			if got := StatusCode(wrapped); got != tc.code {
				t.Errorf("StatusCode = %#x", got)
			}
			var se *StatusError
			if !errors.As(wrapped, &se) || se.Code != tc.code {
				t.Errorf("errors.As gives %v", se)
			}
			for _, other := range statusTable {
				if other.code != tc.code && errors.Is(e, other.sentinel) {
					t.Errorf("also matches %s", other.name)
				}
			}
		})
	}
}

func TestStatusNameRanges(t *testing.T) {
	for _, tc := range []struct {
		code byte
		want string
	}{
		{0x00, "CTAP2_OK"},
		{0xDF, "CTAP2_ERR_SPEC_LAST"},
		{0xE0, "CTAP2_ERR_EXTENSION"},
		{0xEF, "CTAP2_ERR_EXTENSION"},
		{0xF0, "CTAP2_ERR_VENDOR"},
		{0xFF, "CTAP2_ERR_VENDOR"},
		{0x16, "UNKNOWN_STATUS"}, // CTAP 2.0's UNSUPPORTED_EXTENSION, gone in 2.1
		{0x38, "UNKNOWN_STATUS"}, // reserved in 2.1
		{0x80, "UNKNOWN_STATUS"},
	} {
		if got := StatusName(tc.code); got != tc.want {
			t.Errorf("StatusName(%#x) = %q, want %q", tc.code, got, tc.want)
		}
	}
	if got := (&StatusError{Code: 0xF3}).Error(); got != "ctap2: CTAP2_ERR_VENDOR (0xF3)" {
		t.Errorf("vendor error text %q", got)
	}
}

func TestStatusCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want byte
	}{
		{"nil", nil, CodeOK},
		{"canceled", fmt.Errorf("wait: %w", context.Canceled), CodeKeepaliveCancel},
		{"deadline", context.DeadlineExceeded, CodeKeepaliveCancel},
		{"plain", errors.New("boom"), CodeOther},
		{"zero status", &StatusError{Code: CodeOK}, CodeOther},
		{"status wins over context", fmt.Errorf("%w: %w", ErrOperationDenied, context.Canceled), CodeOperationDenied},
		{"vendor", &StatusError{Code: 0xF1}, 0xF1},
	} {
		if got := StatusCode(tc.err); got != tc.want {
			t.Errorf("%s: StatusCode = %#x, want %#x", tc.name, got, tc.want)
		}
	}
}
