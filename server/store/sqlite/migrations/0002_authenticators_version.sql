-- 0002: the version of each identity's authenticator set: how many
-- authenticators were ever created for it. CreateAuthenticator raises it, and
-- CreateAuthenticatorAt stores a new authenticator only if it is still the
-- value the quotas were checked against (store.AuthenticatorSet), so that
-- concurrent adds cannot overrun a quota.
ALTER TABLE identities ADD COLUMN authenticators_version INTEGER NOT NULL DEFAULT 0
	CHECK (authenticators_version >= 0);
