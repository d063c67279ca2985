package pskc_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/authbench/authbench/server/pskc"
)

const (
	fig6Cipher   = "AAECAwQFBgcICQoLDA0OD+cIHItlB3Wra1DUpxVvOx2lef1VmNPCMl8jwZqIUqGv"
	fig6MAC      = "Su+NvtQfmvfJzF6bmQiJqoLRExc="
	fig6MACKeyCV = "ESIzRFVmd4iZABEiM0RVZgKn6WjLaTC1sbeBMSvIhRejN9vJa2BOlSaMrR7I5wSX"
)

// fig6MACKey is the MAC key of Figure 6, in the clear.
var fig6MACKey = unhex("1122334455667788990011223344556677889900")

// flip returns base64 text b64 with bit 0 of byte i flipped.
func flip(b64 string, i int) string {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		panic(err)
	}
	b[i] ^= 1
	return base64.StdEncoding.EncodeToString(b)
}

// sealRaw encrypts block-aligned plain under the Figure 6 key with a fixed
// IV, without adding padding, and returns the CipherValue and its
// HMAC-SHA1 ValueMAC, both base64.
func sealRaw(plain []byte) (cv, mac string) {
	block, err := aes.NewCipher(rfcPreSharedKey)
	if err != nil {
		panic(err)
	}
	out := make([]byte, 16+len(plain))
	copy(out, "IVIVIVIVIVIVIVIV")
	cipher.NewCBCEncrypter(block, out[:16]).CryptBlocks(out[16:], plain)
	m := hmac.New(sha1.New, fig6MACKey)
	m.Write(out)
	return base64.StdEncoding.EncodeToString(out), base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestTamper alters the RFC 6030 examples and checks that each change fails
// with the right error, naming the right field.
func TestTamper(t *testing.T) {
	fig6 := readTestdata(t, "rfc6030-fig6-preshared.xml")
	fig7 := readTestdata(t, "rfc6030-fig7-pbkdf2.xml")
	badPad0, badPad0MAC := sealRaw([]byte("0123456789abcde\x00"))
	badPad17, badPad17MAC := sealRaw([]byte("0123456789abcde\x11"))
	shortCV := base64.StdEncoding.EncodeToString([]byte("IVIVIVIVIVIVIVIVshort"))
	m := hmac.New(sha1.New, fig6MACKey)
	m.Write([]byte("IVIVIVIVIVIVIVIVshort"))
	shortMAC := base64.StdEncoding.EncodeToString(m.Sum(nil))

	type edit struct{ old, new string }
	tests := []struct {
		name   string
		doc    []byte
		edits  []edit
		keys   pskc.KeySource
		want   error
		orWant error // a second acceptable sentinel
		field  string
		pkg    int
	}{
		{name: "flip a ciphertext byte", doc: fig6, edits: []edit{{fig6Cipher, flip(fig6Cipher, 20)}},
			want: pskc.ErrMAC, field: "Key/Data/Secret/ValueMAC", pkg: 1},
		{name: "flip an IV byte", doc: fig6, edits: []edit{{fig6Cipher, flip(fig6Cipher, 3)}},
			want: pskc.ErrMAC, field: "Key/Data/Secret/ValueMAC", pkg: 1},
		{name: "flip a MAC byte", doc: fig6, edits: []edit{{fig6MAC, flip(fig6MAC, 0)}},
			want: pskc.ErrMAC, field: "Key/Data/Secret/ValueMAC", pkg: 1},
		{name: "truncated MAC", doc: fig6, edits: []edit{{fig6MAC, "Su+NvtQfmvfJzF6bmQiJqg=="}},
			want: pskc.ErrMAC, field: "Key/Data/Secret/ValueMAC", pkg: 1},
		{name: "MAC not base64", doc: fig6, edits: []edit{{fig6MAC, "not*base64"}},
			want: pskc.ErrMAC, field: "Key/Data/Secret/ValueMAC", pkg: 1},
		{name: "drop ValueMAC", doc: fig6, edits: []edit{{"<ValueMAC>" + fig6MAC, "<!-- -->"}, {"</ValueMAC>", ""}},
			want: pskc.ErrMAC, field: "Key/Data/Secret/ValueMAC", pkg: 1},
		{name: "two ValueMACs", doc: fig6, edits: []edit{{"<ValueMAC>", "<ValueMAC>" + fig6MAC + "</ValueMAC><ValueMAC>"}},
			want: pskc.ErrMAC, field: "Key/Data/Secret/ValueMAC", pkg: 1},
		{name: "drop MACMethod", doc: fig6, edits: []edit{{"<MACMethod", "<!--MACMethod"}, {"</MACMethod>", "-->"}},
			want: pskc.ErrMAC, field: "Key/Data/Secret/EncryptedValue", pkg: 1},
		{name: "MACMethod without MACKey", doc: fig6, edits: []edit{{"<MACKey>", "<!--"}, {"</MACKey>", "-->"}},
			want: pskc.ErrMAC, field: "MACMethod/MACKey"},
		{name: "unknown MAC algorithm", doc: fig6, edits: []edit{{"xmldsig#hmac-sha1", "xmldsig-more#hmac-md5"}},
			want: pskc.ErrUnsupported, field: "MACMethod/@Algorithm"},
		{name: "altered MACKey", doc: fig6, edits: []edit{{fig6MACKeyCV, flip(fig6MACKeyCV, 40)}},
			want: pskc.ErrMAC, field: "Key/Data/Secret/ValueMAC", pkg: 1},
		{name: "wrong pre-shared key", doc: fig6, keys: pskc.PreShared{"Pre-shared-key": unhex("00000000000000000000000000000000")},
			want: pskc.ErrMAC, orWant: pskc.ErrDecrypt, pkg: -1},
		{name: "pre-shared key of the wrong size", doc: fig6, keys: pskc.PreShared{"Pre-shared-key": make([]byte, 32)},
			want: pskc.ErrDecrypt, field: "EncryptionKey/KeyName"},
		{name: "unknown key name", doc: fig6, keys: pskc.PreShared{"other": rfcPreSharedKey},
			want: pskc.ErrNoKey, field: "EncryptionKey/KeyName"},
		{name: "no KeySource", doc: fig6, keys: nil, want: pskc.ErrNoKey, field: "EncryptionKey/KeyName"},
		{name: "passphrase for a pre-shared document", doc: fig6, keys: pskc.Passphrase("qwerty"), want: pskc.ErrNoKey},
		{name: "wrong passphrase", doc: fig7, keys: pskc.Passphrase("qwertz"),
			want: pskc.ErrMAC, orWant: pskc.ErrDecrypt, pkg: -1},
		{name: "pre-shared key for a passphrase document", doc: fig7, keys: pskc.PreShared{}, want: pskc.ErrNoKey},
		{name: "huge iteration count", doc: fig7, edits: []edit{{"<IterationCount>1000<", "<IterationCount>2000000000<"}},
			want: pskc.ErrUnsupported, field: "EncryptionKey/DerivedKey/KeyDerivationMethod/PBKDF2-params/IterationCount"},
		{name: "zero iteration count", doc: fig7, edits: []edit{{"<IterationCount>1000<", "<IterationCount>0<"}},
			want: pskc.ErrFormat},
		{name: "unknown PRF", doc: fig7, edits: []edit{{"<PRF/>", `<PRF Algorithm="urn:example:md5"/>`}},
			want: pskc.ErrUnsupported},
		{name: "KeyLength does not fit the cipher", doc: fig7, edits: []edit{{"<KeyLength>16<", "<KeyLength>32<"}},
			want: pskc.ErrFormat, field: "EncryptionKey/DerivedKey"},
		{name: "salt missing", doc: fig7, edits: []edit{{"<Specified>Ej7/PEpyEpw=</Specified>", ""}},
			want: pskc.ErrFormat},
		{name: "other key derivation", doc: fig7, edits: []edit{{"pkcs-5v2-0#pbkdf2", "pkcs-5v2-0#scrypt"}},
			want: pskc.ErrUnsupported},
		{name: "key wrap instead of CBC", doc: fig6, edits: []edit{{`xmlenc#aes128-cbc"/>
                        <xenc:CipherData>`, `xmlenc#kw-aes128"/>
                        <xenc:CipherData>`}},
			want: pskc.ErrUnsupported, field: "Key/Data/Secret/EncryptedValue/EncryptionMethod/@Algorithm", pkg: 1},
		{name: "asymmetric key protection", doc: fig6, edits: []edit{{"<ds:KeyName>Pre-shared-key</ds:KeyName>", "<ds:X509Data/>"}},
			want: pskc.ErrUnsupported, field: "EncryptionKey/X509Data"},
		{name: "bad padding byte 0 under a good MAC", doc: fig6, edits: []edit{{fig6Cipher, badPad0}, {fig6MAC, badPad0MAC}},
			want: pskc.ErrDecrypt, field: "Key/Data/Secret/EncryptedValue", pkg: 1},
		{name: "bad padding byte 17 under a good MAC", doc: fig6, edits: []edit{{fig6Cipher, badPad17}, {fig6MAC, badPad17MAC}},
			want: pskc.ErrDecrypt, field: "Key/Data/Secret/EncryptedValue", pkg: 1},
		{name: "ciphertext not whole blocks under a good MAC", doc: fig6, edits: []edit{{fig6Cipher, shortCV}, {fig6MAC, shortMAC}},
			want: pskc.ErrDecrypt, field: "Key/Data/Secret/EncryptedValue", pkg: 1},
		{name: "CipherReference", doc: fig6, edits: []edit{{"<xenc:CipherValue>\n    AAEC", `<xenc:CipherReference URI="http://example.com/"/><xenc:CipherValue>AAEC`}},
			want: pskc.ErrUnsupported, field: "Key/Data/Secret/EncryptedValue/CipherData/CipherReference", pkg: 1},
		{name: "empty CipherValue", doc: fig6, edits: []edit{{fig6Cipher, ""}},
			want: pskc.ErrFormat, field: "Key/Data/Secret/EncryptedValue/CipherData/CipherValue", pkg: 1},
		{name: "no EncryptionMethod", doc: fig6, edits: []edit{{`<xenc:EncryptionMethod
                        Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>`, ""}},
			want: pskc.ErrFormat, field: "Key/Data/Secret/EncryptedValue/EncryptionMethod", pkg: 1},
		{name: "check digits", doc: fig6, edits: []edit{{`Encoding="DECIMAL"`, `Encoding="DECIMAL" CheckDigits="true"`}},
			want: pskc.ErrUnsupported, field: "Key/AlgorithmParameters/ResponseFormat/@CheckDigits", pkg: 1},
		{name: "no Length", doc: fig6, edits: []edit{{`Length="8" `, ""}},
			want: pskc.ErrFormat, field: "Key/AlgorithmParameters/ResponseFormat/@Length", pkg: 1},
		{name: "two keys in a package", doc: fig6, edits: []edit{{"</KeyPackage>", "<Key/></KeyPackage>"}},
			want: pskc.ErrFormat, field: "Key", pkg: 1},
		{name: "two serial numbers", doc: fig6, edits: []edit{{"</DeviceInfo>", "<SerialNo>2</SerialNo></DeviceInfo>"}},
			want: pskc.ErrFormat, field: "DeviceInfo/SerialNo", pkg: 1},
		{name: "zero time interval", doc: fig6, edits: []edit{{"</Data>", "<TimeInterval><PlainValue>0</PlainValue></TimeInterval></Data>"}},
			want: pskc.ErrFormat, field: "Key/Data/TimeInterval/PlainValue", pkg: 1},
		{name: "drift beyond xs:int", doc: fig6, edits: []edit{{"</Data>", "<TimeDrift><PlainValue>2147483648</PlainValue></TimeDrift></Data>"}},
			want: pskc.ErrFormat, field: "Key/Data/TimeDrift/PlainValue", pkg: 1},
		{name: "version 2.0", doc: fig6, edits: []edit{{`Version="1.0"`, `Version="2.0"`}},
			want: pskc.ErrUnsupported, field: "KeyContainer/@Version"},
		{name: "PIN algorithm", doc: fig6, edits: []edit{{"pskc:hotp", "pskc:pin"}},
			want: pskc.ErrUnsupported, field: "Key/@Algorithm", pkg: 1},
		{name: "4 digits", doc: fig6, edits: []edit{{`Length="8"`, `Length="4"`}},
			want: pskc.ErrUnsupported, pkg: 1},
		{name: "hexadecimal codes", doc: fig6, edits: []edit{{`Encoding="DECIMAL"`, `Encoding="HEXADECIMAL"`}},
			want: pskc.ErrUnsupported, pkg: 1},
		{name: "unknown suite", doc: fig6, edits: []edit{{"<AlgorithmParameters>", "<AlgorithmParameters><Suite>HMAC-MD5</Suite>"}},
			want: pskc.ErrUnsupported, field: "Key/AlgorithmParameters/Suite", pkg: 1},
		{name: "negative counter", doc: fig6, edits: []edit{{"<PlainValue>0</PlainValue>", "<PlainValue>-1</PlainValue>"}},
			want: pskc.ErrFormat, field: "Key/Data/Counter/PlainValue", pkg: 1},
		{name: "counter not a number", doc: fig6, edits: []edit{{"<PlainValue>0</PlainValue>", "<PlainValue>zero</PlainValue>"}},
			want: pskc.ErrFormat, pkg: 1},
		{name: "encrypted counter", doc: fig6, edits: []edit{{"<PlainValue>0</PlainValue>", "<EncryptedValue/>"}},
			want: pskc.ErrUnsupported, field: "Key/Data/Counter", pkg: 1},
		{name: "plain and encrypted secret", doc: fig6, edits: []edit{{"<EncryptedValue>", "<PlainValue>MTIzNA==</PlainValue><EncryptedValue>"}},
			want: pskc.ErrFormat, field: "Key/Data/Secret", pkg: 1},
		{name: "two secrets", doc: fig6, edits: []edit{{"<Counter>", "<Secret/><Counter>"}},
			want: pskc.ErrFormat, field: "Key/Data/Secret", pkg: 1},
		{name: "no secret", doc: fig6, edits: []edit{{"<Secret>", "<!--"}, {"</Secret>", "-->"}},
			want: pskc.ErrFormat, field: "Key/Data/Secret", pkg: 1},
		{name: "no key Id", doc: fig6, edits: []edit{{`Id="12345678"`, `Id=" "`}},
			want: pskc.ErrFormat, field: "Key/@Id", pkg: 1},
		{name: "PIN policy", doc: fig6, edits: []edit{{"</Data>", `</Data><Policy><PINPolicy MinLength="4"/></Policy>`}},
			want: pskc.ErrUnsupported, field: "Key/Policy/PINPolicy", pkg: 1},
		{name: "key usage other than OTP", doc: fig6, edits: []edit{{"</Data>", `</Data><Policy><KeyUsage>Encrypt</KeyUsage></Policy>`}},
			want: pskc.ErrUnsupported, field: "Key/Policy/KeyUsage", pkg: 1},
		{name: "date without zone", doc: fig6, edits: []edit{{"</Data>", `</Data><Policy><StartDate>2006-05-01T00:00:00</StartDate></Policy>`}},
			want: pskc.ErrFormat, field: "Key/Policy/StartDate", pkg: 1},
		{name: "DOCTYPE", doc: fig6, edits: []edit{{"<KeyContainer", "<!DOCTYPE KeyContainer><KeyContainer"}},
			want: pskc.ErrFormat},
		{name: "DOCTYPE inside", doc: fig6, edits: []edit{{"<KeyPackage>", "<KeyPackage><!DOCTYPE x>"}},
			want: pskc.ErrFormat},
		{name: "undeclared entity", doc: fig6, edits: []edit{{"987654321", "&xxe;"}},
			want: pskc.ErrFormat},
		{name: "latin-1 document", doc: fig6, edits: []edit{{`encoding="UTF-8"`, `encoding="ISO-8859-1"`}},
			want: pskc.ErrFormat},
		{name: "other root namespace", doc: fig6, edits: []edit{{`xmlns="urn:ietf:params:xml:ns:keyprov:pskc"`, `xmlns="urn:ietf:params:xml:ns:keyprov:pskc:1.0"`}},
			want: pskc.ErrFormat},
		{name: "two roots", doc: append(append([]byte{}, fig6...), fig6[bytes.Index(fig6, []byte("<KeyContainer")):]...),
			want: pskc.ErrFormat},
		{name: "text after root", doc: append(append([]byte{}, fig6...), "junk"...), want: pskc.ErrFormat},
		{name: "truncated", doc: fig6[:len(fig6)/2], want: pskc.ErrFormat},
		{name: "not XML", doc: []byte("12345678901234567890"), want: pskc.ErrFormat},
		{name: "empty", doc: nil, want: pskc.ErrFormat},
		{name: "duplicate attribute", doc: fig6, edits: []edit{{`Id="12345678"`, `Id="12345678" Id="1"`}},
			want: pskc.ErrFormat},
		{name: "deep nesting", doc: fig6, edits: []edit{{"<Issuer>Issuer</Issuer>", strings.Repeat("<a>", 80) + strings.Repeat("</a>", 80)}},
			want: pskc.ErrFormat},
		{name: "mismatched tags", doc: fig6, edits: []edit{{"</Issuer>", "</Issue>"}}, want: pskc.ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			for _, e := range tt.edits {
				doc = replace(t, doc, e.old, e.new)
			}
			keys := tt.keys
			if keys == nil && !strings.HasPrefix(tt.name, "no KeySource") {
				keys = rfcKeys
			}
			c, err := pskc.Parse(bytes.NewReader(doc), keys)
			if c != nil {
				t.Error("got a container with an error")
			}
			want := tt.want
			if tt.orWant != nil && errors.Is(err, tt.orWant) {
				want = tt.orWant
			}
			t.Log(err)
			e := wantErr(t, err, want)
			if tt.field != "" && e.Field != tt.field {
				t.Errorf("field %q, want %q (%v)", e.Field, tt.field, err)
			}
			switch {
			case tt.pkg > 0 && e.Package != tt.pkg:
				t.Errorf("package %d, want %d (%v)", e.Package, tt.pkg, err)
			case tt.pkg == 0 && tt.field != "" && !strings.HasPrefix(tt.field, "Key/") && e.Package != 0:
				t.Errorf("package %d, want a container error (%v)", e.Package, err)
			}
			if e.Package > 0 && !strings.Contains(err.Error(), fmt.Sprintf("key package %d", e.Package)) {
				t.Errorf("error %q does not name its key package", err)
			}
		})
	}
}

// TestXMLEncryptionPadding: XML Encryption §5.2 padding counts in the last
// byte only; the other padding bytes may be anything.
func TestXMLEncryptionPadding(t *testing.T) {
	cv, mac := sealRaw([]byte("0123456789abc\xaa\xbb\x03"))
	doc := readTestdata(t, "rfc6030-fig6-preshared.xml")
	doc = replace(t, doc, fig6Cipher, cv)
	doc = replace(t, doc, fig6MAC, mac)
	c, err := pskc.Parse(bytes.NewReader(doc), rfcKeys)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(c.Keys[0].Secret); got != "0123456789abc" {
		t.Errorf("secret %q", got)
	}
}

// TestAllOrNothing: one bad key package fails the whole document, and the
// error names it by position, serial and key Id.
func TestAllOrNothing(t *testing.T) {
	var keys []pskc.Key
	for i := range 3 {
		keys = append(keys, pskc.Key{Serial: fmt.Sprintf("CD-%04d", i+1), ID: fmt.Sprintf("k%d", i+1),
			Algorithm: pskc.TOTP, Secret: []byte("12345678901234567890")})
	}
	psk := unhex("000102030405060708090a0b0c0d0e0f")
	var buf bytes.Buffer
	if err := pskc.Write(&buf, keys, pskc.EncryptOptions{Key: psk, Rand: &countingRand{}}); err != nil {
		t.Fatal(err)
	}
	doc := buf.Bytes()
	// Break the third ValueMAC.
	i := bytes.LastIndex(doc, []byte("<pskc:ValueMAC>")) + len("<pskc:ValueMAC>")
	doc[i] ^= 1
	c, err := pskc.Parse(bytes.NewReader(doc), pskc.PreShared{pskc.DefaultKeyName: psk})
	if c != nil {
		t.Fatal("got a container")
	}
	e := wantErr(t, err, pskc.ErrMAC)
	if e.Package != 3 || e.Serial != "CD-0003" || e.KeyID != "k3" {
		t.Errorf("error names package %d serial %q key %q, want 3 CD-0003 k3", e.Package, e.Serial, e.KeyID)
	}
	const want = `pskc: key package 3 (serial "CD-0003", key "k3"): Key/Data/Secret/ValueMAC: MAC check failed: `
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q\nwant prefix %q", err, want)
	}
}

// TestCopiedCipherValue: the MAC does not bind a secret to its package, so
// a CipherValue repeated in another package is refused.
func TestCopiedCipherValue(t *testing.T) {
	doc := readTestdata(t, "rfc6030-fig6-preshared.xml")
	start := bytes.Index(doc, []byte("<KeyPackage>"))
	end := bytes.Index(doc, []byte("</KeyPackage>")) + len("</KeyPackage>")
	second := bytes.Replace(doc[start:end], []byte(`Id="12345678"`), []byte(`Id="other"`), 1)
	doc = append(append(append([]byte{}, doc[:end]...), second...), doc[end:]...)
	_, err := pskc.Parse(bytes.NewReader(doc), rfcKeys)
	if e := wantErr(t, err, pskc.ErrFormat); e.Package != 2 {
		t.Errorf("package %d, want 2: %v", e.Package, err)
	}
}

func TestDuplicateKeyID(t *testing.T) {
	doc := readTestdata(t, "rfc6030-fig10-bulk.xml")
	doc = replace(t, doc, `Key Id="3"`, `Key Id="1"`)
	_, err := pskc.Options{AllowPlain: true}.Parse(bytes.NewReader(doc), nil)
	if e := wantErr(t, err, pskc.ErrFormat); e.Package != 3 || e.Field != "Key/@Id" {
		t.Errorf("got package %d field %q: %v", e.Package, e.Field, err)
	}
}

func TestHostileTestdata(t *testing.T) {
	for _, tt := range []struct {
		file string
		want error
	}{
		{"invalid/doctype-external-entity.xml", pskc.ErrFormat},
		{"invalid/doctype-billion-laughs.xml", pskc.ErrFormat},
		{"invalid/rfc6030-fig5-pin-policy.xml", pskc.ErrUnsupported},
	} {
		c, err := pskc.Options{AllowPlain: true}.Parse(bytes.NewReader(readTestdata(t, tt.file)), rfcKeys)
		if c != nil {
			t.Errorf("%s: got a container", tt.file)
		}
		wantErr(t, err, tt.want)
	}
}

func TestLimits(t *testing.T) {
	fig10 := readTestdata(t, "rfc6030-fig10-bulk.xml")
	t.Run("MaxBytes", func(t *testing.T) {
		_, err := pskc.Options{AllowPlain: true, MaxBytes: int64(len(fig10) - 1)}.Parse(bytes.NewReader(fig10), nil)
		wantErr(t, err, pskc.ErrTooLarge)
		if _, err := (pskc.Options{AllowPlain: true, MaxBytes: int64(len(fig10))}).Parse(bytes.NewReader(fig10), nil); err != nil {
			t.Errorf("a document of exactly MaxBytes: %v", err)
		}
	})
	t.Run("MaxKeys", func(t *testing.T) {
		_, err := pskc.Options{AllowPlain: true, MaxKeys: 3}.Parse(bytes.NewReader(fig10), nil)
		wantErr(t, err, pskc.ErrTooLarge)
	})
	t.Run("default MaxBytes", func(t *testing.T) {
		big := append(append([]byte{}, fig10...), bytes.Repeat([]byte(" "), pskc.DefaultMaxBytes)...)
		_, err := pskc.Options{AllowPlain: true}.Parse(bytes.NewReader(big), nil)
		wantErr(t, err, pskc.ErrTooLarge)
	})
	t.Run("default MaxKeys", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString(`<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">`)
		for range pskc.DefaultMaxKeys + 1 {
			b.WriteString("<KeyPackage/>")
		}
		b.WriteString("</KeyContainer>")
		_, err := pskc.Parse(&b, nil)
		wantErr(t, err, pskc.ErrTooLarge)
	})
	t.Run("MaxIterations", func(t *testing.T) {
		fig7 := readTestdata(t, "rfc6030-fig7-pbkdf2.xml")
		_, err := pskc.Options{MaxIterations: 999}.Parse(bytes.NewReader(fig7), rfcKeys)
		wantErr(t, err, pskc.ErrUnsupported)
		if _, err := (pskc.Options{MaxIterations: 1000}).Parse(bytes.NewReader(fig7), rfcKeys); err != nil {
			t.Error(err)
		}
	})
	t.Run("MaxSecretSize", func(t *testing.T) {
		doc := replace(t, readTestdata(t, "rfc6030-fig2-plain.xml"), "MTIzNA==",
			base64.StdEncoding.EncodeToString(make([]byte, pskc.MaxSecretSize+1)))
		_, err := pskc.Options{AllowPlain: true}.Parse(bytes.NewReader(doc), nil)
		wantErr(t, err, pskc.ErrUnsupported)
	})
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := pskc.Parse(iotest.ErrReader(boom), nil)
	if !errors.Is(err, boom) {
		t.Fatalf("error %v does not wrap the reader's", err)
	}
	var e *pskc.Error
	if errors.As(err, &e) {
		t.Errorf("a read error is a *pskc.Error: %v", err)
	}
}
