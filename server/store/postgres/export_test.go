package postgres

// SecretTables returns the tables that hold key material, for tests.
func SecretTables() []string { return append([]string(nil), secretTables...) }
