// Package walvfs registers with SQLite a VFS that is the default "unix" VFS
// except for write-ahead logs: the writes SQLite makes to a WAL file that
// follow one another in the file are gathered in memory and reach the file
// as one write.
//
// SQLite writes each WAL frame with two writes, its 24-byte header and then
// its page, and a commit writes several frames back to back, so a commit of
// n frames costs 2n pwrite system calls. Through this VFS it costs one.
//
// The bytes that reach the file, and their order relative to every fsync,
// are those of the unix VFS: the gathered bytes are written before the file
// is synced, read, truncated, sized, closed, locked or given a file
// control, before a write that does not follow them, and as soon as the
// frame that commits a transaction is complete; a write into bytes just
// read (SQLite rewriting the checksums of frames, the commit frame's
// last) is not gathered but written at once. So nothing SQLite counts as
// committed (and other connections may read, through their own file
// descriptors, once the wal-index says so) is held back whatever the
// connection's synchronous setting. What a crash loses is what the unix VFS
// may lose: writes of a transaction not yet committed.
//
// Gathered bytes that are not a commit's (frames of a transaction that
// spilled its page cache and rolled back) are written before the
// connection releases a lock of the wal-index, so they never reach the log
// after another connection has written frames at the same offsets.
//
// The main database file is the unix VFS's but for that (its xShmLock and
// xClose); its -shm and every other file are the unix VFS's own, untouched.
//
// SQLite here is C transpiled to Go (modernc.org/sqlite): its structs live
// in memory SQLite allocates, and a C function pointer is a uintptr that
// holds a Go func value. This file reads and writes those structs with
// unsafe; all of it is here.
package walvfs

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Name is the name the VFS is registered under: the URI parameter
// vfs=Name opens a database through it.
const Name = "authbench-walgather"

var (
	once    sync.Once
	regErr  error
	unixVFS uintptr // the sqlite3_vfs the shim wraps
	unixSz  int32   // its szOsFile
	methods uintptr // the shim's sqlite3_io_methods, in SQLite's memory
)

// Register registers the VFS with SQLite, once per process; later calls
// return the first one's result.
func Register() error {
	once.Do(func() { regErr = register() })
	return regErr
}

// walFile is the sqlite3_file of a WAL opened through the shim. SQLite
// allocates szOsFile bytes for it: this header, then the unix VFS's own
// file at real. buf is memory from libc.Xmalloc whose first n bytes belong
// at offset off of the file.
type walFile struct {
	base   sqlite3.Tsqlite3_file // pMethods: &methods, or 0 if open failed
	real   uintptr               // the unix VFS's sqlite3_file
	buf    uintptr               // bufSize bytes, allocated at the first write
	n      int64
	off    int64
	commit bool // the last write gathered is the header of a commit frame
	// db is the main database file the log is of, when it was opened
	// through the shim (its dbTail.wal is this file), or 0.
	db uintptr
	// rdOff and rdEnd are the bytes the last call read, until the next
	// write (rdEnd 0: none).
	rdOff, rdEnd int64
}

// hdrSize is walFile's size rounded up to 8, so the unix file after it is
// aligned as SQLite's allocation is.
var hdrSize = (int32(unsafe.Sizeof(walFile{})) + 7) &^ 7

// A main database file opened through the shim is the unix VFS's file at
// the start of the space SQLite gave, with a copy of the unix methods
// whose xShmLock and xClose are the shim's; the dbTail after the unix
// file (in the hdrSize bytes SQLite gives more) holds what they need.
//
// A connection writes frames to its log while it holds the log's write
// lock, a lock of the wal-index (xShmLock of the database file). Frames
// of a transaction that spilled its page cache and then rolled back are
// gathered, not committed, and no call on the log need follow the
// rollback; were they written after the lock is released, they would
// land on frames another connection has committed since at the same
// offsets. So the gathered bytes are written before the database file
// releases any wal-index lock, while the lock is held.
type dbTail struct {
	methods uintptr // the unix VFS's sqlite3_io_methods of the file
	wal     uintptr // the walFile of its log, while it is open, or 0
}

// tailAt is the offset of a database file's dbTail, after the unix file.
var tailAt = (uintptr(0) + 7) &^ 7

func tail(pFile uintptr) *dbTail { return (*dbTail)(cmem(pFile + tailAt)) }

var (
	dbMu      sync.Mutex
	dbMethods = map[uintptr]uintptr{} // the unix VFS's io methods -> the shim's copy
	ourMethod = map[uintptr]bool{}    // the copies
)

// shimMethods returns the shim's copy of the unix io methods m, made at
// the first call, or 0 if m has no shm methods or no memory is left.
func shimMethods(tls *libc.TLS, m uintptr) uintptr {
	dbMu.Lock()
	defer dbMu.Unlock()
	if c, ok := dbMethods[m]; ok {
		return c
	}
	if (*sqlite3.Tsqlite3_io_methods)(cmem(m)).FiVersion < 2 {
		return 0
	}
	c := libc.Xmalloc(tls, uint64(unsafe.Sizeof(sqlite3.Tsqlite3_io_methods{})))
	if c == 0 {
		return 0
	}
	io := (*sqlite3.Tsqlite3_io_methods)(cmem(c))
	*io = *(*sqlite3.Tsqlite3_io_methods)(cmem(m))
	setFP(&io.FxShmLock, xDbShmLock)
	setFP(&io.FxClose, xDbClose)
	dbMethods[m] = c
	ourMethod[c] = true
	return c
}

func isShimDB(pFile uintptr) bool {
	m := (*sqlite3.Tsqlite3_file)(cmem(pFile)).FpMethods
	dbMu.Lock()
	defer dbMu.Unlock()
	return ourMethod[m]
}

func dbReal(pFile uintptr) *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(cmem(tail(pFile).methods))
}

func xDbShmLock(tls *libc.TLS, pFile uintptr, ofst, n, flags int32) int32 {
	if w := tail(pFile).wal; w != 0 && flags&sqlite3.SQLITE_SHM_UNLOCK != 0 {
		// Not committed (a commit is written when its frame is
		// complete): a failed write loses nothing SQLite counts on,
		// and the lock is released all the same.
		_ = flush(tls, wal(w))
	}
	return fp[func(*libc.TLS, uintptr, int32, int32, int32) int32](dbReal(pFile).FxShmLock)(tls, pFile, ofst, n, flags)
}

func xDbClose(tls *libc.TLS, pFile uintptr) int32 {
	t := tail(pFile)
	if t.wal != 0 {
		wal(t.wal).db = 0
		t.wal = 0
	}
	return fp[func(*libc.TLS, uintptr) int32](dbReal(pFile).FxClose)(tls, pFile)
}

const (
	// bufSize bounds the bytes gathered: a write that would gather more
	// sends what is gathered first, and one larger goes straight to the
	// unix VFS. The unix VFS's xWrite takes at most 128 KiB - 1 bytes
	// (its pwrite is of amt & 0x1ffff bytes); 120 KiB holds 29 frames of
	// 4 KiB pages, a few hundred bytes of pwrite per commit.
	bufSize  = 120 << 10
	walHdr   = 32 // a WAL starts with a 32-byte header
	frameHdr = 24 // each frame with a 24-byte header
)

func register() error {
	tls := libc.NewTLS() // kept: the VFS is registered for the process's life
	unixVFS = sqlite3.Xsqlite3_vfs_find(tls, 0)
	if unixVFS == 0 {
		return errors.New("walvfs: SQLite has no default VFS")
	}
	u := (*sqlite3.Tsqlite3_vfs)(cmem(unixVFS))
	unixSz = u.FszOsFile
	tailAt = (uintptr(unixSz) + 7) &^ 7
	if tailAt+unsafe.Sizeof(dbTail{}) > uintptr(unixSz+hdrSize) {
		return errors.New("walvfs: no room for a database file's tail")
	}

	m := libc.Xcalloc(tls, 1, uint64(unsafe.Sizeof(sqlite3.Tsqlite3_io_methods{})))
	v := libc.Xcalloc(tls, 1, uint64(unsafe.Sizeof(sqlite3.Tsqlite3_vfs{})))
	cname, err := libc.CString(Name)
	if m == 0 || v == 0 || err != nil {
		return errors.New("walvfs: out of memory")
	}
	// Version 1: SQLite calls the shm and mmap methods (versions 2 and 3)
	// on the main database file only, never on a WAL.
	io := (*sqlite3.Tsqlite3_io_methods)(cmem(m))
	io.FiVersion = 1
	setFP(&io.FxClose, xClose)
	setFP(&io.FxRead, xRead)
	setFP(&io.FxWrite, xWrite)
	setFP(&io.FxTruncate, xTruncate)
	setFP(&io.FxSync, xSync)
	setFP(&io.FxFileSize, xFileSize)
	setFP(&io.FxLock, xLock)
	setFP(&io.FxUnlock, xUnlock)
	setFP(&io.FxCheckReservedLock, xCheckReservedLock)
	setFP(&io.FxFileControl, xFileControl)
	setFP(&io.FxSectorSize, xSectorSize)
	setFP(&io.FxDeviceCharacteristics, xDeviceCharacteristics)
	methods = m

	// The unix VFS with a larger file and its own xOpen. Its other methods
	// take the sqlite3_vfs but use only its pAppData and mxPathname, which
	// are the unix VFS's.
	vfs := (*sqlite3.Tsqlite3_vfs)(cmem(v))
	*vfs = *u
	vfs.FpNext = 0
	vfs.FzName = cname
	vfs.FszOsFile = hdrSize + unixSz
	setFP(&vfs.FxOpen, xOpen)
	if rc := sqlite3.Xsqlite3_vfs_register(tls, v, 0); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("walvfs: registering the VFS: SQLite error %d", rc)
	}
	return nil
}

// setFP stores the Go function f in the C function pointer *fp. f must be a
// top-level function: its func value is static, so the uintptr keeps
// nothing alive the garbage collector would need to see.
func setFP[F any](fp *uintptr, f F) {
	*(*F)(unsafe.Pointer(fp)) = f
}

// fp returns the C function pointer p as a Go func of type F.
func fp[F any](p uintptr) F {
	return *(*F)(unsafe.Pointer(&p))
}

func realMethods(f *walFile) *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(cmem((*sqlite3.Tsqlite3_file)(cmem(f.real)).FpMethods))
}

func wal(p uintptr) *walFile { return (*walFile)(cmem(p)) }

// cmem turns an address SQLite gave into a pointer. The memory is SQLite's
// (modernc.org/libc's allocator, or a transpiled static), never the Go
// heap's, so the garbage collector neither moves nor frees it; the
// conversion goes through memory only to keep go vet's uintptr check,
// which is about Go heap memory, quiet.
func cmem(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

func xOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	open := fp[func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32]((*sqlite3.Tsqlite3_vfs)(cmem(unixVFS)).FxOpen)
	if flags&sqlite3.SQLITE_OPEN_WAL == 0 {
		// Not a WAL: the unix VFS's file, at the start of the space
		// SQLite gave, with the unix methods; a main database file's
		// with the shim's xShmLock and xClose (dbTail).
		rc := open(tls, unixVFS, zName, pFile, flags, pOutFlags)
		base := (*sqlite3.Tsqlite3_file)(cmem(pFile))
		if rc != sqlite3.SQLITE_OK || flags&sqlite3.SQLITE_OPEN_MAIN_DB == 0 || base.FpMethods == 0 {
			return rc
		}
		if c := shimMethods(tls, base.FpMethods); c != 0 {
			*tail(pFile) = dbTail{methods: base.FpMethods}
			base.FpMethods = c
		}
		return rc
	}
	f := wal(pFile)
	*f = walFile{real: pFile + uintptr(hdrSize)}
	if rc := open(tls, unixVFS, zName, f.real, flags, pOutFlags); rc != sqlite3.SQLITE_OK {
		// SQLite calls xClose only on a file whose pMethods is set.
		return rc
	}
	f.base.FpMethods = methods
	if db := sqlite3.Xsqlite3_database_file_object(tls, zName); db != 0 && isShimDB(db) {
		tail(db).wal = pFile
		f.db = db
	}
	return sqlite3.SQLITE_OK
}

// flush writes the gathered bytes with one write of the unix VFS. They are
// dropped whether it succeeds or not: SQLite handles a failed write of its
// log as it would the unix VFS's failure, by not counting the frames.
func flush(tls *libc.TLS, f *walFile) int32 {
	f.commit = false
	if f.n == 0 {
		return sqlite3.SQLITE_OK
	}
	n, off := f.n, f.off
	f.n = 0
	return fp[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](realMethods(f).FxWrite)(tls, f.real, f.buf, int32(n), off)
}

func xWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	f := wal(pFile)
	amt := int64(iAmt)
	wasCommit := f.commit
	// A write into the frame just read rewrites it: at a commit that
	// overwrote pages of frames it had written before (a transaction
	// that spilled its page cache), SQLite reads each frame from the
	// first one overwritten on and rewrites its header with the checksums
	// that follow, the commit frame's last, and then publishes the commit
	// with no further call on the log. Such a write is sent at once, so a
	// rewritten commit frame is never left behind in memory when SQLite
	// does not sync the log (synchronous=NORMAL).
	rewrite := f.rdEnd > 0 && iOfst < f.rdEnd && iOfst+amt > f.rdOff
	f.rdEnd = 0
	if f.n > 0 && (rewrite || iOfst != f.off+f.n || f.n+amt > bufSize) {
		if rc := flush(tls, f); rc != sqlite3.SQLITE_OK {
			return rc
		}
	}
	if rewrite || amt > bufSize || amt <= 0 {
		return fp[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](realMethods(f).FxWrite)(tls, f.real, zBuf, iAmt, iOfst)
	}
	if f.buf == 0 {
		if f.buf = libc.Xmalloc(tls, bufSize); f.buf == 0 {
			// No memory to gather in: this write as the unix VFS
			// would.
			return fp[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](realMethods(f).FxWrite)(tls, f.real, zBuf, iAmt, iOfst)
		}
	}
	if f.n == 0 {
		f.off = iOfst
	}
	libc.Xmemcpy(tls, f.buf+uintptr(f.n), zBuf, uint64(amt))
	f.n += amt
	if wasCommit {
		// The page of a commit frame: the transaction's frames are all
		// written, and SQLite may publish them in the wal-index next.
		return flush(tls, f)
	}
	// A frame header whose second field (the database's size in pages)
	// is not zero ends a commit; its page comes next.
	if iAmt == frameHdr && iOfst >= walHdr {
		p := (*[frameHdr]byte)(cmem(zBuf))
		f.commit = p[4]|p[5]|p[6]|p[7] != 0
	}
	return sqlite3.SQLITE_OK
}

func xClose(tls *libc.TLS, pFile uintptr) int32 {
	f := wal(pFile)
	rc := flush(tls, f)
	if f.db != 0 {
		tail(f.db).wal = 0
		f.db = 0
	}
	if f.buf != 0 {
		libc.Xfree(tls, f.buf)
		f.buf = 0
	}
	if crc := fp[func(*libc.TLS, uintptr) int32](realMethods(f).FxClose)(tls, f.real); rc == sqlite3.SQLITE_OK {
		rc = crc
	}
	return rc
}

func xRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	f := wal(pFile)
	if rc := flush(tls, f); rc != sqlite3.SQLITE_OK {
		return rc
	}
	f.rdOff, f.rdEnd = iOfst, iOfst+int64(iAmt)
	return fp[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](realMethods(f).FxRead)(tls, f.real, zBuf, iAmt, iOfst)
}

func xTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	f := wal(pFile)
	if rc := flush(tls, f); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fp[func(*libc.TLS, uintptr, int64) int32](realMethods(f).FxTruncate)(tls, f.real, size)
}

func xSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	f := wal(pFile)
	if rc := flush(tls, f); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fp[func(*libc.TLS, uintptr, int32) int32](realMethods(f).FxSync)(tls, f.real, flags)
}

func xFileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	f := wal(pFile)
	if rc := flush(tls, f); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fp[func(*libc.TLS, uintptr, uintptr) int32](realMethods(f).FxFileSize)(tls, f.real, pSize)
}

func xLock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	f := wal(pFile)
	if rc := flush(tls, f); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fp[func(*libc.TLS, uintptr, int32) int32](realMethods(f).FxLock)(tls, f.real, lock)
}

func xUnlock(tls *libc.TLS, pFile uintptr, lock int32) int32 {
	f := wal(pFile)
	if rc := flush(tls, f); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fp[func(*libc.TLS, uintptr, int32) int32](realMethods(f).FxUnlock)(tls, f.real, lock)
}

func xCheckReservedLock(tls *libc.TLS, pFile, pResOut uintptr) int32 {
	f := wal(pFile)
	if rc := flush(tls, f); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fp[func(*libc.TLS, uintptr, uintptr) int32](realMethods(f).FxCheckReservedLock)(tls, f.real, pResOut)
}

func xFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	f := wal(pFile)
	if rc := flush(tls, f); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return fp[func(*libc.TLS, uintptr, int32, uintptr) int32](realMethods(f).FxFileControl)(tls, f.real, op, pArg)
}

func xSectorSize(tls *libc.TLS, pFile uintptr) int32 {
	return fp[func(*libc.TLS, uintptr) int32](realMethods(wal(pFile)).FxSectorSize)(tls, wal(pFile).real)
}

func xDeviceCharacteristics(tls *libc.TLS, pFile uintptr) int32 {
	return fp[func(*libc.TLS, uintptr) int32](realMethods(wal(pFile)).FxDeviceCharacteristics)(tls, wal(pFile).real)
}
