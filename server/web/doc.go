// Package web serves the pages of an authbench server, as MitID.dk offers
// them (DESIGN §5): the self-service pages at / and the support console at
// /support. They are a second face of server/service, beside the HTTP API
// of server/api: the same use cases, sessions, rate limits and words.
//
// A person logs in with the password and a second factor (a code from a
// code display or audio code reader, or the chip through WebAuthn in the
// browser), or with the MitID app alone (its device key and PIN: the page
// shows the service's challenge as a transfer code, and the person pastes
// the app's signature, from the phone or `authbench app respond`, with the
// PIN), sees their authenticators, blocks one, reactivates a
// temporarily blocked one, adds a chip (again, after a permanent block: a
// new security element), adds and activates a code device, sets a new
// password, ends sessions and reads the audit trail. Support logs in with a
// support token, finds or creates an identity, blocks and unblocks it,
// reactivates and blocks authenticators, adds a code device or a password
// at the desk, imports PSKC documents and verifies the audit trail.
//
// The pages are server-rendered (html/template, embedded); the only script
// is static/webauthn.js, which runs navigator.credentials.create and get
// and posts the result with the form. Nothing is fetched from elsewhere.
// Security as a site needs it: the session cookie (the service's session
// token) is HttpOnly, SameSite=Strict, and Secure with a __Host- name when
// the server runs over TLS; every form carries a CSRF token (a double
// submit of a random cookie, with the Origin and Sec-Fetch-Site headers
// checked too) and a POST without one is refused; a strict
// Content-Security-Policy allows no inline script or style; logins and
// activations take the per-source rate limit of the API. The support
// console's cookie is MACed with a key derived from the operator's support
// token, so any replica with the same token file accepts it and removing
// the token ends it.
//
// Texts are in Danish and English (a switch on every page; the default
// from Accept-Language); refusals show the service's own words
// (service.Message), in English, as the API gives them.
package web
