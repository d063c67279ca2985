// Package client is the Go client of the authbench HTTP API v1 and the
// ceremonies that drive a real or simulated authenticator through it.
//
// It sits between the server and the devices (see the README's layout): a Client speaks
// JSON over HTTP to the server's /v1 endpoints, one method per endpoint,
// with typed requests and answers that mirror the API contract; the
// ceremony functions (EnrollChip, EnrollCodeDevice, EnrollApp, AddPassword;
// LoginPasswordChip, LoginPasswordCode, LoginPasswordCodeDevice, LoginApp)
// take a device.Chip, a device.CodeDevice or an app key and play the part
// a browser or the MitID app plays.
//
// Logins are MitID's (DESIGN §1): the password and then a second factor,
// a chip or a code device (PasswordLogin, SecondFactorLogin, FinishLogin),
// or the app alone (AppLogin, FinishLogin); each yields a two-factor
// Session that records what proved it. Sessions, EndSession and Logout
// list and end them.
//
// Chip ceremonies follow WebAuthn Level 3 as a client platform would:
// §5.1.3 / §7.1 (registration) and §5.1.4 / §7.2 (authentication), with
// the WebAuthn package of the tree, device/webauthn (ChipRegistration and
// ChipAssertion are its Create and Get): it builds the client data
// (§5.8.1, serialised as in §5.8.1.1), hashes it with SHA-256 for CTAP 2.1
// §6.1 authenticatorMakeCredential or §6.2 authenticatorGetAssertion,
// wraps the chip's answer into an attestation object (§6.5, in the CTAP2
// canonical CBOR encoding form of CTAP 2.1 §8) and returns
// RegistrationResponseJSON or AuthenticationResponseJSON (§5.1, toJSON),
// which the client sends to the server. Keepalives (CTAP 2.1 §11.2.9.1.7,
// UPNEEDED while the chip waits for a touch) reach Options.Keepalive
// through ctap2.WithKeepalive, so a program can say "touch your chip".
//
// Errors from the server are *APIError, which matches the sentinels of this
// package (ErrSuspended, ErrWrongCode, ...) under errors.Is by the error
// code of the contract; transport failures wrap ErrUnreachable; an answer
// that cannot be read wraps ErrBadResponse.
package client
