package gcpace

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// The tests change the process's garbage collector settings: none runs
// in parallel.

const mib = 1 << 20

// churn allocates total bytes of garbage in 32 KiB pieces and returns the
// collections that ran meanwhile and the most heap memory (objects, live
// or not yet swept) seen, read after every MiB.
func churn(total int) (cycles, peak uint64) {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	var keep []byte
	for i := 0; i < total/(32<<10); i++ {
		keep = make([]byte, 32<<10)
		keep[0] = byte(i)
		if i%32 == 0 {
			metrics.Read(s)
			peak = max(peak, s[1].Value.Uint64())
		}
	}
	runtime.KeepAlive(keep)
	metrics.Read(s)
	return s[0].Value.Uint64() - before, peak
}

// liveHeap returns what the last collection marked live.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func start(t *testing.T, headroom uint64) *Pacer {
	t.Helper()
	runtime.GC()
	p, err := Start(headroom)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// A small live heap that allocates fast is collected about once per
// headroom of garbage, not once per live heap as under GOGC=100, and the
// heap stays within live + headroom.
func TestSmallHeapCollectedOncePerHeadroom(t *testing.T) {
	const total, headroom = 1024 * mib, 64 * mib
	runtime.GC()
	plain, _ := churn(total)
	p := start(t, headroom)
	cycles, peak := churn(total)
	adjusted, goal := p.Stats()
	live := liveHeap()
	t.Logf("%d MiB of garbage, live heap %d MiB: %d collections under GOGC=100, %d paced with headroom %d MiB (adjusted %d times, last goal %d MiB); peak heap %d MiB",
		total/mib, live/mib, plain, cycles, headroom/mib, adjusted, goal/mib, peak/mib)
	if want := uint64(total / headroom); cycles > 2*want || cycles < want/2 {
		t.Errorf("%d collections for %d MiB of garbage with a headroom of %d MiB; want about %d", cycles, total/mib, headroom/mib, want)
	}
	// The cleanup that adjusts runs on its own goroutine once the
	// sentinel's span is swept; when collections follow each other
	// closely, one adjustment may cover two.
	if adjusted < cycles/2 {
		t.Errorf("the settings were adjusted %d times over %d collections; want after nearly every one", adjusted, cycles)
	}
	if bound := max(live, minLive) + headroom + headroom/2; peak > bound {
		t.Errorf("the heap reached %d MiB; live %d MiB + headroom %d MiB allow %d MiB (with half the headroom more for the collector's lag and garbage not yet swept)", peak/mib, live/mib, headroom/mib, bound/mib)
	}
}

// A live heap larger than the headroom (argon2id blocks held during a
// burst of password logins) is collected as under GOGC=100: the heap
// grows by the live heap before the next collection, never by a multiple
// of it.
func TestLargeHeapPacedAsGOGC100(t *testing.T) {
	const total, held, headroom = 1024 * mib, 96 * mib, 8 * mib
	hold := make([][]byte, held/mib)
	for i := range hold {
		hold[i] = make([]byte, mib)
	}
	runtime.GC()
	plain, plainPeak := churn(total)
	start(t, headroom)
	runtime.GC()
	live := liveHeap()
	cycles, peak := churn(total)
	runtime.KeepAlive(hold)
	t.Logf("%d MiB of garbage, live heap %d MiB: under GOGC=100 %d collections, peak heap %d MiB; paced with headroom %d MiB %d collections, peak heap %d MiB",
		total/mib, live/mib, plain, plainPeak/mib, headroom/mib, cycles, peak/mib)
	if want := uint64(total) / live; cycles > 2*want || cycles < want/2 {
		t.Errorf("%d collections for %d MiB of garbage with %d MiB live; want about %d (GOGC=100)", cycles, total/mib, live/mib, want)
	}
	if bound := plainPeak + plainPeak/10; peak > bound {
		t.Errorf("the heap reached %d MiB with %d MiB live; under GOGC=100 it reached %d MiB", peak/mib, live/mib, plainPeak/mib)
	}
}

// Live data excluded as another program's (a load generator's simulated
// clients beside the server) gets a room of its own size on top of the
// headroom, until it is released: 64 MiB held with a headroom of 64 MiB
// are collected once per 64 MiB of garbage as the server's, once per
// 128 MiB as another program's, and the heap stays within live + headroom
// + the excluded bytes.
func TestExcludedLiveHeapHasRoomOfItsOwn(t *testing.T) {
	const total, held, headroom = 1024 * mib, 64 * mib, 64 * mib
	hold := make([][]byte, held/mib)
	for i := range hold {
		hold[i] = make([]byte, mib)
	}
	p := start(t, headroom)
	runtime.GC()
	counted, _ := churn(total)
	release := p.Exclude(held)
	runtime.GC()
	live := liveHeap()
	excluded, peak := churn(total)
	_, goal := p.Stats()
	release()
	release()
	runtime.GC()
	released, _ := churn(total)
	runtime.KeepAlive(hold)
	t.Logf("%d MiB of garbage, live heap %d MiB, headroom %d MiB: %d collections with the held %d MiB counted as the server's, %d with them excluded (goal %d MiB, peak heap %d MiB), %d after the release",
		total/mib, live/mib, headroom/mib, counted, held/mib, excluded, goal/mib, peak/mib, released)
	if want := uint64(total) / (headroom + held); excluded > 2*want || excluded < want/2 {
		t.Errorf("%d collections for %d MiB of garbage with %d MiB excluded and a headroom of %d MiB; want about %d", excluded, total/mib, held/mib, headroom/mib, want)
	}
	if excluded*4 > counted*3 || excluded*4 > released*3 {
		t.Errorf("%d collections with %d MiB excluded, %d before and %d after: want clearly fewer", excluded, held/mib, counted, released)
	}
	if bound := live + headroom + held + headroom/2; peak > bound {
		t.Errorf("the heap reached %d MiB; live %d MiB + headroom %d MiB + %d MiB excluded allow %d MiB (with half the headroom more for the collector's lag)", peak/mib, live/mib, headroom/mib, held/mib, bound/mib)
	}
}

// Stop gives back the settings Start found, and only one pacer runs at a
// time.
func TestStopRestores(t *testing.T) {
	old := debug.SetGCPercent(150)
	oldLimit := debug.SetMemoryLimit(3 << 30)
	defer func() {
		debug.SetGCPercent(old)
		debug.SetMemoryLimit(oldLimit)
	}()
	p, err := Start(32 * mib)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(32 * mib); err == nil {
		t.Error("a second pacer started while one runs")
	}
	if got := debug.SetMemoryLimit(-1); got == 3<<30 {
		t.Error("the pacer did not set the memory limit")
	}
	p.Stop()
	p.Stop()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("GOGC after Stop: %d, want 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Errorf("memory limit after Stop: %d, want %d", got, int64(3<<30))
	}
	runtime.GC()
	runtime.GC()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("GOGC changed after Stop by a collection: %d, want 150", got)
	}
	p2, err := Start(32 * mib)
	if err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	p2.Stop()
	if _, err := Start(0); err == nil {
		t.Error("a headroom of 0 was accepted")
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	// t.Setenv cannot unset; a variable set to "" is set all the same.
	if got := Environment(); got != "GOGC= GOMEMLIMIT=" {
		t.Errorf("Environment() = %q", got)
	}
	t.Setenv("GOGC", "200")
	t.Setenv("GOMEMLIMIT", "1GiB")
	if got := Environment(); got != "GOGC=200 GOMEMLIMIT=1GiB" {
		t.Errorf("Environment() = %q", got)
	}
}
