package service

// VerifyRegistration exposes the chip registration check to the
// benchmarks of service_test: the WebAuthn verification alone, without the
// ceremony store or the transition.
func VerifyRegistration(s *Service, r *RegistrationResponse, challenge []byte) error {
	_, err := s.verifyRegistration(r, challenge)
	return err
}

// VerifyAssertion exposes the chip login check likewise.
func VerifyAssertion(s *Service, r *AuthenticationResponse, challenge []byte, credID string, coseKey []byte) error {
	_, err := s.verifyAssertion(r, challenge, credID, coseKey, false)
	return err
}
