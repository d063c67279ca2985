package sqlite

// ForgetMirror makes s forget the records it holds in memory, for a test
// that changed the database behind its back (what no program but the one
// that holds the file may do while it runs).
var ForgetMirror = forgetMirror
