package frame

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"testing"
	"time"
)

// goldenPayloads returns the payloads of the golden frames with command
// cmd (for a response: what follows a StatusOK byte).
func goldenPayloads(tb testing.TB, cmd byte) [][]byte {
	var out [][]byte
	for _, wire := range goldenFiles(tb) {
		f, err := ParseFrame(wire)
		if err != nil || f.Cmd != cmd {
			continue
		}
		p := f.Payload
		if f.IsResponse() {
			if len(p) == 0 || p[0] != byte(StatusOK) {
				continue
			}
			p = p[1:]
		}
		out = append(out, p)
	}
	return out
}

// FuzzParser feeds random bytes to the stream parser, whole and in pieces:
// no panic; every frame re-encodes to bytes found in the input; the
// pieces give the same frames and counters; every input byte is accounted
// for as a frame, skipped or buffered; after Idle nothing stays buffered.
func FuzzParser(f *testing.F) {
	var all []byte
	for _, b := range goldenFiles(f) {
		f.Add(b, uint8(0))
		all = append(all, b...)
	}
	f.Add(all, uint8(3))
	f.Add([]byte{SOF, 0x00, 0x05, 0x00, SOF, 0x00, 0x00, 0x01, 0x02, 0x1D, 0x0F}, uint8(1))
	f.Add([]byte{SOF, 0x04, 0x01, SOF, SOF, SOF}, uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, piece uint8) {
		var p, q Parser
		whole := feed(&p, in, 0)
		pieces := feed(&q, in, int(piece)%17+1)
		if !reflect.DeepEqual(whole, pieces) || p.Stats() != q.Stats() || p.Buffered() != q.Buffered() {
			t.Fatalf("whole: %d frames %+v; pieces: %d frames %+v", len(whole), p.Stats(), len(pieces), q.Stats())
		}
		used := 0
		for _, fr := range whole {
			wire, err := fr.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(in, wire) {
				t.Fatalf("frame %x is not in the input", wire)
			}
			used += len(wire)
		}
		st := p.Stats()
		if st.Frames != uint64(len(whole)) || used+int(st.Skipped)+p.Buffered() != len(in) {
			t.Fatalf("%d bytes in, %d in frames, %d skipped, %d buffered", len(in), used, st.Skipped, p.Buffered())
		}
		if p.Buffered() >= MaxFrame {
			t.Fatalf("%d bytes buffered", p.Buffered())
		}
		p.Idle()
		for {
			if _, ok := p.Next(); !ok {
				break
			}
		}
		if p.Buffered() != 0 {
			t.Fatalf("%d bytes buffered after Idle", p.Buffered())
		}
	})
}

// FuzzParseFrame: a frame that parses re-encodes to exactly its input.
func FuzzParseFrame(f *testing.F) {
	for _, b := range goldenFiles(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, err := ParseFrame(in)
		if err != nil {
			if fr != nil {
				t.Fatal("value with error")
			}
			return
		}
		if wire, err := fr.Encode(); err != nil || !bytes.Equal(wire, in) {
			t.Fatalf("re-encoded %x, %v", wire, err)
		}
	})
}

// roundTrip checks a payload decoder: no panic, nil with an error, and a
// successful parse that re-encodes to exactly the input.
func roundTrip[T interface{ Encode() ([]byte, error) }](f *testing.F, cmd byte, parse func([]byte) (T, error), extra ...[]byte) {
	for _, p := range goldenPayloads(f, cmd) {
		f.Add(p)
	}
	for _, p := range extra {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := parse(in)
		if err != nil {
			if !reflect.ValueOf(v).IsNil() {
				t.Fatal("value with error")
			}
			return
		}
		out, err := v.Encode()
		if err != nil {
			t.Fatalf("parsed %+v does not encode: %v", v, err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("%x re-encodes to %x", in, out)
		}
	})
}

// FuzzIdentity: IDENTIFY drops unknown tags and orders its tags, so the
// round trip is checked on the canonical form.
func FuzzIdentity(f *testing.F) {
	for _, p := range goldenPayloads(f, CmdIdentify|ResponseBit) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := ParseIdentity(in)
		if err != nil {
			if v != nil {
				t.Fatal("value with error")
			}
			return
		}
		canon, err := v.Encode()
		if err != nil {
			t.Fatalf("parsed %+v does not encode: %v", v, err)
		}
		v2, err := ParseIdentity(canon)
		if err != nil || *v2 != *v {
			t.Fatalf("canonical %x parses to %+v, %v; want %+v", canon, v2, err, v)
		}
		if again, _ := v2.Encode(); !bytes.Equal(again, canon) {
			t.Fatalf("canonical form is not stable: %x then %x", canon, again)
		}
	})
}

func FuzzPress(f *testing.F) {
	roundTrip(f, CmdPress|ResponseBit, ParsePress, []byte("\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01123456"))
}

func FuzzDisplay(f *testing.F) { roundTrip(f, CmdDisplay|ResponseBit, ParseDisplay) }

func FuzzAudioRequest(f *testing.F) { roundTrip(f, CmdAudio, ParseAudioRequest) }

func FuzzSettings(f *testing.F) { roundTrip(f, CmdSettings, ParseSettings) }

func FuzzStatus(f *testing.F) { roundTrip(f, CmdStatus|ResponseBit, ParseStatus) }

func FuzzProvisionRequest(f *testing.F) { roundTrip(f, CmdProvision, ParseProvisionRequest) }

func FuzzProvisionResponse(f *testing.F) {
	roundTrip(f, CmdProvision|ResponseBit, ParseProvisionResponse)
}

func FuzzSetClock(f *testing.F) { roundTrip(f, CmdSetClock, ParseSetClock) }

// FuzzServe runs the device side on hostile bytes: no panic, it returns at
// EOF, and everything it writes is well-formed answers.
func FuzzServe(f *testing.F) {
	var reqs []byte
	for _, b := range goldenFiles(f) {
		if fr, err := ParseFrame(b); err == nil && !fr.IsResponse() {
			f.Add(b)
			reqs = append(reqs, b...)
		}
	}
	f.Add(reqs)
	f.Add(append(append([]byte{}, reqs...), reqs...)) // every request twice: from the cache
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		srv := &Server{Handler: newFakeDevice(KindAudioReader), IdleTimeout: time.Millisecond}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(in), &out}
		if err := srv.Serve(ctx, rw); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("Serve did not return at EOF")
		}
		var p Parser
		p.Write(out.Bytes())
		n := 0
		for {
			fr, ok := p.Next()
			if !ok {
				break
			}
			n++
			if !fr.IsResponse() || len(fr.Payload) == 0 {
				t.Fatalf("bad answer %+v", fr)
			}
		}
		st := srv.Stats()
		if p.Buffered() != 0 || p.Stats().Skipped != 0 || uint64(n) != st.Requests+st.Replayed {
			t.Fatalf("%d answers for %+v; %d bytes left", n, st, p.Buffered())
		}
	})
}
