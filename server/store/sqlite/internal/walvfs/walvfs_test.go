package walvfs

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	_ "modernc.org/sqlite"
)

// openDB opens path in WAL mode with synchronous=FULL, through the shim if
// shim, with automatic checkpoints off so the log keeps every frame.
func openDB(t testing.TB, path string, shim bool) *sql.DB {
	t.Helper()
	if err := Register(); err != nil {
		t.Fatal(err)
	}
	q := "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=wal_autocheckpoint(0)&_pragma=busy_timeout(10000)&_txlock=immediate"
	if shim {
		q += "&vfs=" + Name
	}
	db, err := sql.Open("sqlite", "file:"+path+q)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// workload makes the same changes on db every time: commits of one to
// many pages, rows that overflow, updates and deletes, a transaction that
// spills the page cache to the log before it commits, and a change that
// leaves the database the same size (so a commit frame's page count is
// the same as before).
func workload(t testing.TB, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
	exec("CREATE INDEX t_v ON t (v)")
	for i := range 200 {
		exec("INSERT INTO t (k, v) VALUES (?, ?)", i, bytes.Repeat([]byte{byte(i)}, 100+i*37%3000))
	}
	for i := range 50 {
		exec("UPDATE t SET v = ? WHERE k = ?", bytes.Repeat([]byte{byte(i + 1)}, 50), i*3)
	}
	exec("DELETE FROM t WHERE k % 7 = 0")
	// A large transaction with a small cache: SQLite writes frames of
	// it to the log before the commit.
	exec("PRAGMA cache_size = 10")
	exec("BEGIN")
	for i := range 300 {
		exec("INSERT INTO t (k, v) VALUES (?, ?)", 1000+i, bytes.Repeat([]byte{byte(i * 7)}, 1500))
	}
	exec("UPDATE t SET v = x'00' WHERE k >= 1000 AND k < 1100")
	exec("COMMIT")
	exec("PRAGMA cache_size = -2000")
	exec("UPDATE t SET v = x'0102' WHERE k = 1")
}

// frames splits a WAL file into its header and frames, with the random
// salts and the checksums that follow from them cleared: what is left is
// what the writes of a workload decide.
func frames(t *testing.T, wal []byte) [][]byte {
	t.Helper()
	if len(wal) < walHdr {
		t.Fatalf("WAL of %d bytes", len(wal))
	}
	pageSize := int(binary.BigEndian.Uint32(wal[8:12]))
	hdr := append([]byte(nil), wal[:walHdr]...)
	clear(hdr[12:32]) // checkpoint sequence, salts, checksum
	out := [][]byte{hdr}
	for off := walHdr; off < len(wal); off += frameHdr + pageSize {
		if off+frameHdr+pageSize > len(wal) {
			t.Fatalf("WAL ends in a frame: %d bytes after offset %d", len(wal)-off, off)
		}
		fr := append([]byte(nil), wal[off:off+frameHdr+pageSize]...)
		clear(fr[8:24]) // salts, checksum
		out = append(out, fr)
	}
	return out
}

func dump(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT k, hex(v) FROM t ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var k int
		var v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d=%s\n", k, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSameLogAsUnix runs the same workload through the unix VFS and
// through the shim and compares the logs they leave, frame by frame (all
// but the salts and checksums, which SQLite draws at random), and the
// database each reads back. The copies of the logs are then opened with
// the unix VFS: SQLite replays a log only as far as its checksums hold, so
// every row being there shows the shim's log is whole.
func TestSameLogAsUnix(t *testing.T) {
	dir := t.TempDir()
	var want string
	var wantFrames [][]byte
	for j, shim := range []bool{false, true} {
		name := fmt.Sprintf("shim=%v-%d", shim, j)
		path := filepath.Join(dir, name+".db")
		db := openDB(t, path, shim)
		workload(t, db)
		got := dump(t, db)
		wal, err := os.ReadFile(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		fr := frames(t, wal)
		// A crash now: the files as they are, opened elsewhere.
		crash := filepath.Join(dir, name+"-crash.db")
		copyFiles(t, path, crash)
		db.Close()
		cdb := openDB(t, crash, false)
		replayed := dump(t, cdb)
		// Every connection closed before the next run: the connections
		// of a process share their page caches' budget, so one left
		// open changes when the next run's large transaction spills.
		cdb.Close()
		if replayed != got {
			t.Errorf("%s: the log replayed after a crash gives another database than the one written", name)
		}
		if !shim {
			want, wantFrames = got, fr
			continue
		}
		if got != want {
			t.Errorf("the shim's database differs from the unix VFS's")
		}
		if len(fr) != len(wantFrames) {
			t.Fatalf("the shim's log has %d frames, the unix VFS's %d", len(fr)-1, len(wantFrames)-1)
		}
		for i := range fr {
			if !bytes.Equal(fr[i], wantFrames[i]) {
				t.Errorf("frame %d of the shim's log differs from the unix VFS's", i)
			}
		}
	}
	if len(wantFrames) < 300 {
		t.Errorf("the workload wrote %d frames; the test means more", len(wantFrames)-1)
	}
}

// TestAcknowledgedCommitsInCopies copies the database and its log while a
// writer commits through the shim, as a crash would find them, and checks
// every commit acknowledged before the copy began is in the copy.
func TestAcknowledgedCommitsInCopies(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	db := openDB(t, path, true)
	if _, err := db.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"); err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64
	done := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			// A few pages per commit, as a login's.
			if _, err := db.Exec("INSERT INTO t (k, v) VALUES (?, randomblob(?))", i, 3000+i%5000); err != nil {
				done <- err
				return
			}
			acked.Store(i)
		}
	}()
	for c := range 20 {
		for acked.Load() < int64(50*(c+1)) {
		}
		before := acked.Load()
		copyPath := filepath.Join(dir, fmt.Sprintf("copy%d.db", c))
		// The database file first: with checkpoints off it does not
		// change, and the log only grows.
		copyFiles(t, path, copyPath)
		cp := openDB(t, copyPath, false)
		var n, maxK int64
		if err := cp.QueryRow("SELECT count(*), coalesce(max(k), 0) FROM t").Scan(&n, &maxK); err != nil {
			t.Fatalf("copy %d: %v", c, err)
		}
		if n != maxK || maxK < before {
			t.Errorf("copy %d: %d rows up to %d, but %d commits were acknowledged before the copy", c, n, maxK, before)
		}
		cp.Close()
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestOtherConnectionsSeeCommits: with synchronous=NORMAL SQLite does
// not sync the log at a commit, and another connection reads the commit's
// frames through its own file descriptor as soon as the commit returns;
// the shim has written them by then.
func TestOtherConnectionsSeeCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	w := openDB(t, path, true)
	if _, err := w.Exec("PRAGMA synchronous = NORMAL; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"); err != nil {
		t.Fatal(err)
	}
	r := openDB(t, path, false)
	for i := 1; i <= 300; i++ {
		if _, err := w.Exec("INSERT INTO t (k, v) VALUES (?, zeroblob(?))", i, 100+i*31%6000); err != nil {
			t.Fatal(err)
		}
		var n, size int
		if err := r.QueryRow("SELECT count(*), coalesce(sum(length(v)), 0) FROM t").Scan(&n, &size); err != nil {
			t.Fatalf("after commit %d: %v", i, err)
		}
		want := 0
		for k := 1; k <= i; k++ {
			want += 100 + k*31%6000
		}
		if n != i || size != want {
			t.Fatalf("after commit %d the other connection sees %d rows of %d bytes, want %d of %d", i, n, size, i, want)
		}
	}
}

// TestRewrittenCommitInLogWithoutSync: a transaction that spills its page
// cache to the log and then changes pages it spilled makes SQLite, at the
// commit, overwrite those frames and rewrite the headers from the first of
// them to the commit frame's with the checksums that follow. With
// synchronous=NORMAL nothing syncs the log after that, and a crash of the
// process must find the committed transaction in the files as the
// operating system has them: the commit frame's header among them, or the
// log's checksums stop before the commit and SQLite drops it.
func TestRewrittenCommitInLogWithoutSync(t *testing.T) {
	dir := t.TempDir()
	for _, shim := range []bool{false, true} {
		name := fmt.Sprintf("shim=%v", shim)
		path := filepath.Join(dir, name+".db")
		db := openDB(t, path, shim)
		ctx := context.Background()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := conn.ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %s: %v", name, q, err)
			}
		}
		exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
		exec("PRAGMA synchronous = NORMAL")
		exec("PRAGMA cache_size = 10")
		exec("BEGIN")
		for i := range 300 {
			exec("INSERT INTO t (k, v) VALUES (?, ?)", i, bytes.Repeat([]byte{byte(i)}, 1500))
		}
		exec("UPDATE t SET v = x'00' WHERE k < 100")
		exec("COMMIT")
		// The process dies now, the connection still open: the files
		// as the operating system has them, opened elsewhere.
		crash := filepath.Join(dir, name+"-crash.db")
		copyFiles(t, path, crash)
		cdb := openDB(t, crash, false)
		var n, zeroed int
		if err := cdb.QueryRow("SELECT count(*), count(*) FILTER (WHERE v = x'00') FROM t").Scan(&n, &zeroed); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n != 300 || zeroed != 100 {
			t.Errorf("%s: after a crash the committed transaction left %d rows, %d of them updated; want 300 and 100", name, n, zeroed)
		}
		cdb.Close()
		conn.Close()
		db.Close()
	}
}

// TestRolledBackSpillKeepsOffOtherCommits: a transaction that spills its
// page cache to the log and then rolls back leaves frames SQLite wrote but
// never committed, and no further call on the log need follow. Another
// connection then commits frames at the same offsets of the log. The
// frames of the rolled-back transaction must not reach the log after that
// and overwrite the other connection's commits: the database stays whole,
// and every row committed is read back, by both connections and after a
// crash.
func TestRolledBackSpillKeepsOffOtherCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	ctx := context.Background()
	a, b := openDB(t, path, true), openDB(t, path, true)
	ca, err := a.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := b.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	exec := func(c *sql.Conn, q string, args ...any) {
		t.Helper()
		if _, err := c.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(ca, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
	exec(ca, "PRAGMA cache_size = 5")
	// An empty log: the rollback finds no page of it to read back.
	exec(ca, "PRAGMA wal_checkpoint(TRUNCATE)")
	exec(ca, "BEGIN IMMEDIATE")
	for i := range 15 {
		exec(ca, "INSERT INTO t (k, v) VALUES (?, ?)", 1000+i, bytes.Repeat([]byte{0xAA}, 3000))
	}
	exec(ca, "ROLLBACK")
	good := bytes.Repeat([]byte{0xBB}, 3000)
	for i := range 60 {
		exec(cb, "INSERT INTO t (k, v) VALUES (?, ?)", i, good)
	}
	check := func(who string, c interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) {
		t.Helper()
		var n, ok int
		var integrity string
		if err := c.QueryRowContext(ctx, "SELECT count(*), count(*) FILTER (WHERE v = ?) FROM t", good).Scan(&n, &ok); err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&integrity); err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if n != 60 || ok != 60 || integrity != "ok" {
			t.Errorf("%s reads %d rows, %d of them as committed, integrity %q; want 60, 60, ok", who, n, ok, integrity)
		}
	}
	check("the connection that rolled back", ca)
	check("the connection that committed", cb)
	crash := filepath.Join(t.TempDir(), "crash.db")
	copyFiles(t, path, crash)
	check("a copy after a crash", openDB(t, crash, false))
}

// copyFiles copies the database file at path and its log to dst and
// dst-wal, as a crash of the process leaves them for the next to open.
func copyFiles(t *testing.T, path, dst string) {
	t.Helper()
	for _, sfx := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + sfx)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+sfx, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// pwrites counts the pwrite system calls of the unix VFS while
// countingPwrite is installed (see countPwrites); while diskFull is set
// they fail with ENOSPC.
var (
	pwrites  atomic.Int64
	diskFull atomic.Bool
)

var realPwrite uintptr

func countingPwrite(tls *libc.TLS, fd int32, buf uintptr, n uint64, off int64) int64 {
	pwrites.Add(1)
	if diskFull.Load() {
		*(*int32)(cmem(libc.X__errno_location(tls))) = int32(syscall.ENOSPC)
		return -1
	}
	return fp[func(*libc.TLS, int32, uintptr, uint64, int64) int64](realPwrite)(tls, fd, buf, n, off)
}

// countPwrites makes the unix VFS count its pwrite calls in pwrites, for
// the rest of the test, through its xSetSystemCall.
func countPwrites(t *testing.T) {
	if err := Register(); err != nil {
		t.Fatal(err)
	}
	tls := libc.NewTLS()
	t.Cleanup(tls.Close)
	u := (*sqlite3.Tsqlite3_vfs)(cmem(unixVFS))
	name, err := libc.CString("pwrite")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { libc.Xfree(tls, name) })
	realPwrite = fp[func(*libc.TLS, uintptr, uintptr) uintptr](u.FxGetSystemCall)(tls, unixVFS, name)
	if realPwrite == 0 {
		t.Fatal("the unix VFS has no pwrite system call")
	}
	set := fp[func(*libc.TLS, uintptr, uintptr, uintptr) int32](u.FxSetSystemCall)
	f := countingPwrite
	if rc := set(tls, unixVFS, name, *(*uintptr)(unsafe.Pointer(&f))); rc != sqlite3.SQLITE_OK {
		t.Fatalf("xSetSystemCall: %d", rc)
	}
	t.Cleanup(func() { set(tls, unixVFS, name, realPwrite) })
}

// TestOnePwritePerCommit counts the pwrite calls of commits that each
// write a few frames: two per frame through the unix VFS, one per commit
// through the shim.
func TestOnePwritePerCommit(t *testing.T) {
	countPwrites(t)
	const commits = 100
	for _, shim := range []bool{false, true} {
		db := openDB(t, filepath.Join(t.TempDir(), "x.db"), shim)
		if _, err := db.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t (v)"); err != nil {
			t.Fatal(err)
		}
		before := pwrites.Load()
		for i := range commits {
			// A row that fills most of a page, and its index entry on
			// another: two or more frames per commit.
			if _, err := db.Exec("INSERT INTO t (k, v) VALUES (?, randomblob(3000))", i); err != nil {
				t.Fatal(err)
			}
		}
		n := pwrites.Load() - before
		if shim && n != commits {
			t.Errorf("through the shim: %d pwrite calls for %d commits, want one each", n, commits)
		}
		if !shim && n < 4*commits {
			t.Errorf("through the unix VFS: %d pwrite calls for %d commits of two frames or more; the count misses some", n, commits)
		}
		t.Logf("shim=%v: %d pwrite calls for %d commits", shim, n, commits)
	}
}

// TestWALOpenFails: a log SQLite cannot open through the shim is an
// SQLite error.
func TestWALOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	if err := os.Mkdir(path+"-wal", 0o700); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, path, true)
	_, err := db.Exec("CREATE TABLE t (k)")
	if err == nil {
		t.Fatal("a write with a directory where the log goes succeeded")
	}
	t.Logf("error: %v", err)
}

// TestDiskFull: when the write of the gathered frames fails (the disk is
// full), the commit fails with SQLite's error, the database keeps the
// commits before it, and once there is room again the next commits land.
func TestDiskFull(t *testing.T) {
	countPwrites(t)
	path := filepath.Join(t.TempDir(), "x.db")
	db := openDB(t, path, true)
	if _, err := db.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1, randomblob(5000))"); err != nil {
		t.Fatal(err)
	}
	diskFull.Store(true)
	_, err := db.Exec("INSERT INTO t VALUES (2, randomblob(5000))")
	diskFull.Store(false)
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("a commit whose log write failed with ENOSPC: %v, want SQLite's disk full error", err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (3, randomblob(5000))"); err != nil {
		t.Fatalf("a commit after the disk has room again: %v", err)
	}
	want := "1\n3\n"
	for _, reopen := range []bool{false, true} {
		if reopen {
			db.Close()
			db = openDB(t, path, true)
		}
		rows, err := db.Query("SELECT k FROM t ORDER BY k")
		if err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		for rows.Next() {
			var k int
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&got, "%d\n", k)
		}
		rows.Close()
		if got.String() != want {
			t.Errorf("reopened=%v: rows %q, want %q", reopen, got.String(), want)
		}
	}
}
