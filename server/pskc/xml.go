package pskc

import "encoding/xml"

// XML namespaces used by PSKC documents (RFC 6030 §11).
const (
	nsPSKC   = "urn:ietf:params:xml:ns:keyprov:pskc"
	nsDS     = "http://www.w3.org/2000/09/xmldsig#"
	nsXENC   = "http://www.w3.org/2001/04/xmlenc#"
	nsXENC11 = "http://www.w3.org/2009/xmlenc11#"
	nsPKCS5  = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#"
)

// Algorithm URIs.
const (
	uriHOTP = "urn:ietf:params:xml:ns:keyprov:pskc:hotp" // RFC 6030 §10.1
	uriTOTP = "urn:ietf:params:xml:ns:keyprov:pskc:totp" // draft-hoyer-keyprov-pskc-algorithm-profiles

	uriAES128CBC = nsXENC + "aes128-cbc"
	uriAES192CBC = nsXENC + "aes192-cbc"
	uriAES256CBC = nsXENC + "aes256-cbc"

	uriHMACSHA1   = nsDS + "hmac-sha1"
	uriHMACSHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
	uriHMACSHA384 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha384"
	uriHMACSHA512 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512"

	uriPBKDF2 = nsPKCS5 + "pbkdf2"
)

// The structs below mirror the parts of the RFC 6030 §11 schema that this
// package reads. Elements that may occur once are slices all the same, so
// that a duplicate is seen and refused instead of silently overwriting the
// first one. Fields without a namespace in their tag match any namespace.

type xContainer struct {
	Version       string           `xml:"Version,attr"`
	ID            string           `xml:"Id,attr"`
	EncryptionKey []xEncryptionKey `xml:"urn:ietf:params:xml:ns:keyprov:pskc EncryptionKey"`
	MACMethod     []xMACMethod     `xml:"urn:ietf:params:xml:ns:keyprov:pskc MACMethod"`
	Packages      []xPackage       `xml:"urn:ietf:params:xml:ns:keyprov:pskc KeyPackage"`
}

type xAny struct {
	XMLName xml.Name
}

type xAlg struct {
	Algorithm string `xml:"Algorithm,attr"`
}

type xEncryptionKey struct {
	KeyName    []string      `xml:"http://www.w3.org/2000/09/xmldsig# KeyName"`
	DerivedKey []xDerivedKey `xml:"http://www.w3.org/2009/xmlenc11# DerivedKey"`
	Other      []xAny        `xml:",any"`
}

type xDerivedKey struct {
	Method []xKDM `xml:"http://www.w3.org/2009/xmlenc11# KeyDerivationMethod"`
}

type xKDM struct {
	Algorithm string    `xml:"Algorithm,attr"`
	Params    []xPBKDF2 `xml:"http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0# PBKDF2-params"`
}

// xPBKDF2 holds PBKDF2-params; RFC 6030 Figure 7 puts its children in no
// namespace, so they match by local name.
type xPBKDF2 struct {
	Salt           []xSalt  `xml:"Salt"`
	IterationCount []string `xml:"IterationCount"`
	KeyLength      []string `xml:"KeyLength"`
	PRF            []xAlg   `xml:"PRF"`
}

type xSalt struct {
	Specified []string `xml:"Specified"`
	Other     []xAny   `xml:",any"`
}

type xMACMethod struct {
	Algorithm string       `xml:"Algorithm,attr"`
	MACKey    []xEncrypted `xml:"urn:ietf:params:xml:ns:keyprov:pskc MACKey"`
}

// xEncrypted is an xenc:EncryptedDataType: EncryptedValue and MACKey.
type xEncrypted struct {
	Method     []xAlg        `xml:"http://www.w3.org/2001/04/xmlenc# EncryptionMethod"`
	CipherData []xCipherData `xml:"http://www.w3.org/2001/04/xmlenc# CipherData"`
}

type xCipherData struct {
	Value     []string `xml:"http://www.w3.org/2001/04/xmlenc# CipherValue"`
	Reference []xAny   `xml:"http://www.w3.org/2001/04/xmlenc# CipherReference"`
}

type xPackage struct {
	DeviceInfo []xDeviceInfo `xml:"urn:ietf:params:xml:ns:keyprov:pskc DeviceInfo"`
	Key        []xKey        `xml:"urn:ietf:params:xml:ns:keyprov:pskc Key"`
}

type xDeviceInfo struct {
	Manufacturer []string `xml:"urn:ietf:params:xml:ns:keyprov:pskc Manufacturer"`
	SerialNo     []string `xml:"urn:ietf:params:xml:ns:keyprov:pskc SerialNo"`
	Model        []string `xml:"urn:ietf:params:xml:ns:keyprov:pskc Model"`
}

type xKey struct {
	ID        string    `xml:"Id,attr"`
	Algorithm string    `xml:"Algorithm,attr"`
	Params    []xParams `xml:"urn:ietf:params:xml:ns:keyprov:pskc AlgorithmParameters"`
	Data      []xData   `xml:"urn:ietf:params:xml:ns:keyprov:pskc Data"`
	Policy    []xPolicy `xml:"urn:ietf:params:xml:ns:keyprov:pskc Policy"`
}

type xParams struct {
	Suite          []string          `xml:"urn:ietf:params:xml:ns:keyprov:pskc Suite"`
	ResponseFormat []xResponseFormat `xml:"urn:ietf:params:xml:ns:keyprov:pskc ResponseFormat"`
}

type xResponseFormat struct {
	Length      *string `xml:"Length,attr"`
	Encoding    *string `xml:"Encoding,attr"`
	CheckDigits *string `xml:"CheckDigits,attr"`
}

type xData struct {
	Secret       []xValue `xml:"urn:ietf:params:xml:ns:keyprov:pskc Secret"`
	Counter      []xValue `xml:"urn:ietf:params:xml:ns:keyprov:pskc Counter"`
	Time         []xValue `xml:"urn:ietf:params:xml:ns:keyprov:pskc Time"`
	TimeInterval []xValue `xml:"urn:ietf:params:xml:ns:keyprov:pskc TimeInterval"`
	TimeDrift    []xValue `xml:"urn:ietf:params:xml:ns:keyprov:pskc TimeDrift"`
}

// xValue is a binaryDataType, intDataType or longDataType (RFC 6030 §4.2).
type xValue struct {
	Plain     []string     `xml:"urn:ietf:params:xml:ns:keyprov:pskc PlainValue"`
	Encrypted []xEncrypted `xml:"urn:ietf:params:xml:ns:keyprov:pskc EncryptedValue"`
	MAC       []string     `xml:"urn:ietf:params:xml:ns:keyprov:pskc ValueMAC"`
}

type xPolicy struct {
	StartDate  []string `xml:"urn:ietf:params:xml:ns:keyprov:pskc StartDate"`
	ExpiryDate []string `xml:"urn:ietf:params:xml:ns:keyprov:pskc ExpiryDate"`
	KeyUsage   []string `xml:"urn:ietf:params:xml:ns:keyprov:pskc KeyUsage"`
	Other      []xAny   `xml:",any"`
}
