package ctap2

import (
	"context"
	"errors"
	"fmt"
)

// Status codes of the authenticator API (CTAP 2.1 §8.2, "Status codes").
// Every CTAP2 response starts with one of them; CodeOK is success.
const (
	CodeOK                     byte = 0x00 // CTAP1_ERR_SUCCESS, CTAP2_OK
	CodeInvalidCommand         byte = 0x01 // CTAP1_ERR_INVALID_COMMAND
	CodeInvalidParameter       byte = 0x02 // CTAP1_ERR_INVALID_PARAMETER
	CodeInvalidLength          byte = 0x03 // CTAP1_ERR_INVALID_LENGTH
	CodeInvalidSeq             byte = 0x04 // CTAP1_ERR_INVALID_SEQ
	CodeTimeout                byte = 0x05 // CTAP1_ERR_TIMEOUT
	CodeChannelBusy            byte = 0x06 // CTAP1_ERR_CHANNEL_BUSY
	CodeLockRequired           byte = 0x0A // CTAP1_ERR_LOCK_REQUIRED
	CodeInvalidChannel         byte = 0x0B // CTAP1_ERR_INVALID_CHANNEL
	CodeCBORUnexpectedType     byte = 0x11 // CTAP2_ERR_CBOR_UNEXPECTED_TYPE
	CodeInvalidCBOR            byte = 0x12 // CTAP2_ERR_INVALID_CBOR
	CodeMissingParameter       byte = 0x14 // CTAP2_ERR_MISSING_PARAMETER
	CodeLimitExceeded          byte = 0x15 // CTAP2_ERR_LIMIT_EXCEEDED
	CodeFPDatabaseFull         byte = 0x17 // CTAP2_ERR_FP_DATABASE_FULL
	CodeLargeBlobStorageFull   byte = 0x18 // CTAP2_ERR_LARGE_BLOB_STORAGE_FULL
	CodeCredentialExcluded     byte = 0x19 // CTAP2_ERR_CREDENTIAL_EXCLUDED
	CodeProcessing             byte = 0x21 // CTAP2_ERR_PROCESSING
	CodeInvalidCredential      byte = 0x22 // CTAP2_ERR_INVALID_CREDENTIAL
	CodeUserActionPending      byte = 0x23 // CTAP2_ERR_USER_ACTION_PENDING
	CodeOperationPending       byte = 0x24 // CTAP2_ERR_OPERATION_PENDING
	CodeNoOperations           byte = 0x25 // CTAP2_ERR_NO_OPERATIONS
	CodeUnsupportedAlgorithm   byte = 0x26 // CTAP2_ERR_UNSUPPORTED_ALGORITHM
	CodeOperationDenied        byte = 0x27 // CTAP2_ERR_OPERATION_DENIED
	CodeKeyStoreFull           byte = 0x28 // CTAP2_ERR_KEY_STORE_FULL
	CodeUnsupportedOption      byte = 0x2B // CTAP2_ERR_UNSUPPORTED_OPTION
	CodeInvalidOption          byte = 0x2C // CTAP2_ERR_INVALID_OPTION
	CodeKeepaliveCancel        byte = 0x2D // CTAP2_ERR_KEEPALIVE_CANCEL
	CodeNoCredentials          byte = 0x2E // CTAP2_ERR_NO_CREDENTIALS
	CodeUserActionTimeout      byte = 0x2F // CTAP2_ERR_USER_ACTION_TIMEOUT
	CodeNotAllowed             byte = 0x30 // CTAP2_ERR_NOT_ALLOWED
	CodePINInvalid             byte = 0x31 // CTAP2_ERR_PIN_INVALID
	CodePINBlocked             byte = 0x32 // CTAP2_ERR_PIN_BLOCKED
	CodePINAuthInvalid         byte = 0x33 // CTAP2_ERR_PIN_AUTH_INVALID
	CodePINAuthBlocked         byte = 0x34 // CTAP2_ERR_PIN_AUTH_BLOCKED
	CodePINNotSet              byte = 0x35 // CTAP2_ERR_PIN_NOT_SET
	CodePUATRequired           byte = 0x36 // CTAP2_ERR_PUAT_REQUIRED
	CodePINPolicyViolation     byte = 0x37 // CTAP2_ERR_PIN_POLICY_VIOLATION
	CodeRequestTooLarge        byte = 0x39 // CTAP2_ERR_REQUEST_TOO_LARGE
	CodeActionTimeout          byte = 0x3A // CTAP2_ERR_ACTION_TIMEOUT
	CodeUPRequired             byte = 0x3B // CTAP2_ERR_UP_REQUIRED
	CodeUVBlocked              byte = 0x3C // CTAP2_ERR_UV_BLOCKED
	CodeIntegrityFailure       byte = 0x3D // CTAP2_ERR_INTEGRITY_FAILURE
	CodeInvalidSubcommand      byte = 0x3E // CTAP2_ERR_INVALID_SUBCOMMAND
	CodeUVInvalid              byte = 0x3F // CTAP2_ERR_UV_INVALID
	CodeUnauthorizedPermission byte = 0x40 // CTAP2_ERR_UNAUTHORIZED_PERMISSION
	CodeOther                  byte = 0x7F // CTAP1_ERR_OTHER
	CodeSpecLast               byte = 0xDF // CTAP2_ERR_SPEC_LAST
	CodeExtensionFirst         byte = 0xE0 // CTAP2_ERR_EXTENSION_FIRST
	CodeExtensionLast          byte = 0xEF // CTAP2_ERR_EXTENSION_LAST
	CodeVendorFirst            byte = 0xF0 // CTAP2_ERR_VENDOR_FIRST
	CodeVendorLast             byte = 0xFF // CTAP2_ERR_VENDOR_LAST
)

// statusNames maps each code of the CTAP 2.1 §8.2 table to its spec name.
var statusNames = map[byte]string{
	CodeOK:                     "CTAP2_OK",
	CodeInvalidCommand:         "CTAP1_ERR_INVALID_COMMAND",
	CodeInvalidParameter:       "CTAP1_ERR_INVALID_PARAMETER",
	CodeInvalidLength:          "CTAP1_ERR_INVALID_LENGTH",
	CodeInvalidSeq:             "CTAP1_ERR_INVALID_SEQ",
	CodeTimeout:                "CTAP1_ERR_TIMEOUT",
	CodeChannelBusy:            "CTAP1_ERR_CHANNEL_BUSY",
	CodeLockRequired:           "CTAP1_ERR_LOCK_REQUIRED",
	CodeInvalidChannel:         "CTAP1_ERR_INVALID_CHANNEL",
	CodeCBORUnexpectedType:     "CTAP2_ERR_CBOR_UNEXPECTED_TYPE",
	CodeInvalidCBOR:            "CTAP2_ERR_INVALID_CBOR",
	CodeMissingParameter:       "CTAP2_ERR_MISSING_PARAMETER",
	CodeLimitExceeded:          "CTAP2_ERR_LIMIT_EXCEEDED",
	CodeFPDatabaseFull:         "CTAP2_ERR_FP_DATABASE_FULL",
	CodeLargeBlobStorageFull:   "CTAP2_ERR_LARGE_BLOB_STORAGE_FULL",
	CodeCredentialExcluded:     "CTAP2_ERR_CREDENTIAL_EXCLUDED",
	CodeProcessing:             "CTAP2_ERR_PROCESSING",
	CodeInvalidCredential:      "CTAP2_ERR_INVALID_CREDENTIAL",
	CodeUserActionPending:      "CTAP2_ERR_USER_ACTION_PENDING",
	CodeOperationPending:       "CTAP2_ERR_OPERATION_PENDING",
	CodeNoOperations:           "CTAP2_ERR_NO_OPERATIONS",
	CodeUnsupportedAlgorithm:   "CTAP2_ERR_UNSUPPORTED_ALGORITHM",
	CodeOperationDenied:        "CTAP2_ERR_OPERATION_DENIED",
	CodeKeyStoreFull:           "CTAP2_ERR_KEY_STORE_FULL",
	CodeUnsupportedOption:      "CTAP2_ERR_UNSUPPORTED_OPTION",
	CodeInvalidOption:          "CTAP2_ERR_INVALID_OPTION",
	CodeKeepaliveCancel:        "CTAP2_ERR_KEEPALIVE_CANCEL",
	CodeNoCredentials:          "CTAP2_ERR_NO_CREDENTIALS",
	CodeUserActionTimeout:      "CTAP2_ERR_USER_ACTION_TIMEOUT",
	CodeNotAllowed:             "CTAP2_ERR_NOT_ALLOWED",
	CodePINInvalid:             "CTAP2_ERR_PIN_INVALID",
	CodePINBlocked:             "CTAP2_ERR_PIN_BLOCKED",
	CodePINAuthInvalid:         "CTAP2_ERR_PIN_AUTH_INVALID",
	CodePINAuthBlocked:         "CTAP2_ERR_PIN_AUTH_BLOCKED",
	CodePINNotSet:              "CTAP2_ERR_PIN_NOT_SET",
	CodePUATRequired:           "CTAP2_ERR_PUAT_REQUIRED",
	CodePINPolicyViolation:     "CTAP2_ERR_PIN_POLICY_VIOLATION",
	CodeRequestTooLarge:        "CTAP2_ERR_REQUEST_TOO_LARGE",
	CodeActionTimeout:          "CTAP2_ERR_ACTION_TIMEOUT",
	CodeUPRequired:             "CTAP2_ERR_UP_REQUIRED",
	CodeUVBlocked:              "CTAP2_ERR_UV_BLOCKED",
	CodeIntegrityFailure:       "CTAP2_ERR_INTEGRITY_FAILURE",
	CodeInvalidSubcommand:      "CTAP2_ERR_INVALID_SUBCOMMAND",
	CodeUVInvalid:              "CTAP2_ERR_UV_INVALID",
	CodeUnauthorizedPermission: "CTAP2_ERR_UNAUTHORIZED_PERMISSION",
	CodeOther:                  "CTAP1_ERR_OTHER",
	CodeSpecLast:               "CTAP2_ERR_SPEC_LAST",
}

// StatusName returns the CTAP 2.1 §8.2 name of a status code, such as
// "CTAP2_ERR_NO_CREDENTIALS". Codes in the extension range (0xE0–0xEF) are
// named "CTAP2_ERR_EXTENSION", codes in the vendor range (0xF0–0xFF)
// "CTAP2_ERR_VENDOR", and codes the table does not define "UNKNOWN_STATUS".
func StatusName(code byte) string {
	if name, ok := statusNames[code]; ok {
		return name
	}
	switch {
	case code >= CodeExtensionFirst && code <= CodeExtensionLast:
		return "CTAP2_ERR_EXTENSION"
	case code >= CodeVendorFirst:
		return "CTAP2_ERR_VENDOR"
	}
	return "UNKNOWN_STATUS"
}

// StatusError is a non-zero CTAP2 status code (CTAP 2.1 §8.2): either the
// answer of an authenticator or the status a Handler will answer with.
//
// Two StatusErrors match under errors.Is when their codes are equal, so
// errors.Is(&StatusError{Code: 0x2E}, ErrNoCredentials) is true. The Err*
// sentinels of this package are StatusErrors themselves.
type StatusError struct {
	Code byte
}

// Error returns "ctap2: CTAP2_ERR_NO_CREDENTIALS (0x2E)" and the like.
func (e *StatusError) Error() string {
	return fmt.Sprintf("ctap2: %s (0x%02X)", StatusName(e.Code), e.Code)
}

// Is reports whether target is a *StatusError with the same code.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && e != nil && t != nil && t.Code == e.Code
}

// StatusCode returns the CTAP2 status code carried by err: the code of the
// first *StatusError in its chain, CodeKeepaliveCancel when err is (or wraps)
// context.Canceled or context.DeadlineExceeded, CodeOK for nil, and CodeOther
// for anything else. The Handler answers with this code.
func StatusCode(err error) byte {
	if err == nil {
		return CodeOK
	}
	var se *StatusError
	if errors.As(err, &se) && se != nil && se.Code != CodeOK {
		return se.Code
	}
	if isContextErr(err) {
		return CodeKeepaliveCancel
	}
	return CodeOther
}

// Sentinels that callers branch on with errors.Is. Each is a *StatusError, so
// a StatusError an authenticator answered with matches the sentinel of its
// code, and a sentinel wrapped by an authenticator's error tells a Handler
// which status to answer.
var (
	ErrInvalidCommand         error = &StatusError{CodeInvalidCommand}
	ErrInvalidParameter       error = &StatusError{CodeInvalidParameter}
	ErrInvalidLength          error = &StatusError{CodeInvalidLength}
	ErrInvalidSeq             error = &StatusError{CodeInvalidSeq}
	ErrTimeout                error = &StatusError{CodeTimeout}
	ErrChannelBusy            error = &StatusError{CodeChannelBusy}
	ErrLockRequired           error = &StatusError{CodeLockRequired}
	ErrInvalidChannel         error = &StatusError{CodeInvalidChannel}
	ErrCBORUnexpectedType     error = &StatusError{CodeCBORUnexpectedType}
	ErrInvalidCBOR            error = &StatusError{CodeInvalidCBOR}
	ErrMissingParameter       error = &StatusError{CodeMissingParameter}
	ErrLimitExceeded          error = &StatusError{CodeLimitExceeded}
	ErrFPDatabaseFull         error = &StatusError{CodeFPDatabaseFull}
	ErrLargeBlobStorageFull   error = &StatusError{CodeLargeBlobStorageFull}
	ErrCredentialExcluded     error = &StatusError{CodeCredentialExcluded}
	ErrProcessing             error = &StatusError{CodeProcessing}
	ErrInvalidCredential      error = &StatusError{CodeInvalidCredential}
	ErrUserActionPending      error = &StatusError{CodeUserActionPending}
	ErrOperationPending       error = &StatusError{CodeOperationPending}
	ErrNoOperations           error = &StatusError{CodeNoOperations}
	ErrUnsupportedAlgorithm   error = &StatusError{CodeUnsupportedAlgorithm}
	ErrOperationDenied        error = &StatusError{CodeOperationDenied}
	ErrKeyStoreFull           error = &StatusError{CodeKeyStoreFull}
	ErrUnsupportedOption      error = &StatusError{CodeUnsupportedOption}
	ErrInvalidOption          error = &StatusError{CodeInvalidOption}
	ErrKeepaliveCancel        error = &StatusError{CodeKeepaliveCancel}
	ErrNoCredentials          error = &StatusError{CodeNoCredentials}
	ErrUserActionTimeout      error = &StatusError{CodeUserActionTimeout}
	ErrNotAllowed             error = &StatusError{CodeNotAllowed}
	ErrPINInvalid             error = &StatusError{CodePINInvalid}
	ErrPINBlocked             error = &StatusError{CodePINBlocked}
	ErrPINAuthInvalid         error = &StatusError{CodePINAuthInvalid}
	ErrPINAuthBlocked         error = &StatusError{CodePINAuthBlocked}
	ErrPINNotSet              error = &StatusError{CodePINNotSet}
	ErrPUATRequired           error = &StatusError{CodePUATRequired}
	ErrPINPolicyViolation     error = &StatusError{CodePINPolicyViolation}
	ErrRequestTooLarge        error = &StatusError{CodeRequestTooLarge}
	ErrActionTimeout          error = &StatusError{CodeActionTimeout}
	ErrUPRequired             error = &StatusError{CodeUPRequired}
	ErrUVBlocked              error = &StatusError{CodeUVBlocked}
	ErrIntegrityFailure       error = &StatusError{CodeIntegrityFailure}
	ErrInvalidSubcommand      error = &StatusError{CodeInvalidSubcommand}
	ErrUVInvalid              error = &StatusError{CodeUVInvalid}
	ErrUnauthorizedPermission error = &StatusError{CodeUnauthorizedPermission}
	ErrOther                  error = &StatusError{CodeOther}
)

// Errors that are not CTAP2 status codes.
var (
	// ErrInvalidResponse is wrapped by the Client when an authenticator's
	// answer cannot be decoded or breaks the rules of CTAP 2.1 §6. A transport
	// layer may map it to device.ErrProtocol.
	ErrInvalidResponse = errors.New("ctap2: invalid response")

	// ErrInvalidSignature is returned by VerifyAssertion and VerifySignature
	// when a signature does not verify.
	ErrInvalidSignature = errors.New("ctap2: invalid signature")
)

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
