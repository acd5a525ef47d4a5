package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/rotor-dev/rotor/keyring/keyid"
)

// The string fields of a line, in the order rotor writes them after seq.
const (
	fTimestamp = iota
	fInitiator
	fAction
	fSecret
	fKeyID
	fStatus
	fDetail
	fPrevHash
	fHash
	fStateDigest // version 2
	numStrFields
)

// fieldNames are the names of a line's fields: seq, then the string fields
// in the order of the f constants, then store_version. A version 1 line
// has every field up to hash; a version 2 line has every field.
var fieldNames = [numFields]string{"seq", "timestamp", "initiator", "action", "secret", "key_id", "status", "detail", "prev_hash", "hash", "state_digest", "store_version"}

const (
	// idxStoreVersion is store_version's place in fieldNames.
	idxStoreVersion = 1 + numStrFields
	numFields       = idxStoreVersion + 1
	// v2Fields and v1Fields are the seen-bits of the fields only version
	// 2 has, and of the fields every line has.
	v2Fields = 1<<(1+fStateDigest) | 1<<idxStoreVersion
	allBits  = 1<<numFields - 1
	v1Fields = allBits &^ v2Fields
)

// rawRecord is a line as the decoder found it: seq and the string fields,
// unescaped, pointing into the line or into the decoder's buffer. It is
// valid until the decoder decodes the next line. Verify works on it, so
// that checking a record allocates nothing.
type rawRecord struct {
	seq uint64
	str [numStrFields][]byte
	ts  time.Time // the timestamp, parsed by validate
	// v2 says the line is a version 2 record, a save: storeVersion and
	// str[fStateDigest] are set.
	v2           bool
	storeVersion uint64
}

// record converts r into a Record. r must have been validated.
func (r *rawRecord) record() Record {
	return Record{
		Seq:       r.seq,
		Timestamp: r.ts,
		Event: Event{
			Initiator: string(r.str[fInitiator]),
			Action:    string(r.str[fAction]),
			Secret:    string(r.str[fSecret]),
			KeyID:     string(r.str[fKeyID]),
			Status:    string(r.str[fStatus]),
			Detail:    string(r.str[fDetail]),

			StoreVersion: r.storeVersion,
			StateDigest:  string(r.str[fStateDigest]),
		},
		PrevHash: string(r.str[fPrevHash]),
		Hash:     string(r.str[fHash]),
	}
}

// decoder parses lines strictly and fast: one pass over the bytes, no
// reflection, no allocation for a line without escapes, and errors built
// only when a line is bad. It accepts exactly the lines a strict JSON
// decoder would accept as a record (the package's tests fuzz it against
// one) and reuses its buffer from line to line.
type decoder struct {
	buf []byte // unescaped strings of the current line
}

// errSyntax is the cause of every "invalid JSON" error.
var errSyntax = errors.New("invalid JSON")

// decode parses line, with or without its trailing newline, into r and
// validates every field, as ParseRecord documents. It does not check the
// hash.
func (d *decoder) decode(line []byte, r *rawRecord) error {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) >= maxLineSize {
		return fmt.Errorf("line is %d bytes long, more than the limit of %d", len(line), maxLineSize-1)
	}
	if bytes.IndexByte(line, '\n') >= 0 {
		return errors.New("line contains a newline")
	}
	if !utf8.Valid(line) {
		return errors.New("line is not valid UTF-8")
	}
	// Unescaping never lengthens a string, so the buffer never grows
	// while a line is decoded and earlier fields stay where they are.
	if cap(d.buf) < len(line) {
		d.buf = make([]byte, 0, len(line))
	}
	d.buf = d.buf[:0]
	*r = rawRecord{}
	if err := d.object(line, r); err != nil {
		return err
	}
	return r.validate(line)
}

// object parses the JSON object that is the whole line.
func (d *decoder) object(line []byte, r *rawRecord) error {
	i := skipSpace(line, 0)
	switch {
	case i == len(line):
		return fmt.Errorf("%w: unexpected end of JSON input", errSyntax)
	case line[i] != '{' && startsValue(line[i]):
		return errors.New("line is not a JSON object")
	case line[i] != '{':
		return fmt.Errorf("%w: invalid character at offset %d", errSyntax, i)
	}
	i = skipSpace(line, i+1)
	var seen uint32
	if i < len(line) && line[i] == '}' {
		i++
	} else {
		for {
			if i == len(line) || line[i] != '"' {
				return syntaxAt(line, i)
			}
			key, next, err := d.str(line, i)
			if err != nil {
				return err
			}
			idx := fieldIndex(key)
			if idx >= 0 && seen&(1<<idx) != 0 {
				return fmt.Errorf("field %q appears twice", key)
			}
			i = skipSpace(line, next)
			if i == len(line) || line[i] != ':' {
				return syntaxAt(line, i)
			}
			i = skipSpace(line, i+1)
			if i == len(line) {
				return syntaxAt(line, i)
			}
			switch {
			case idx < 0 && startsValue(line[i]):
				return fmt.Errorf("unknown field %q", key)
			case idx == 0:
				if i, err = parseUint(line, i, "seq", &r.seq); err != nil {
					return err
				}
			case idx == idxStoreVersion:
				if i, err = parseUint(line, i, "store_version", &r.storeVersion); err != nil {
					return err
				}
			case line[i] == '"':
				if r.str[idx-1], i, err = d.str(line, i); err != nil {
					return err
				}
			case startsValue(line[i]):
				return fmt.Errorf("field %q is not a string", fieldNames[idx])
			default:
				return syntaxAt(line, i)
			}
			seen |= 1 << idx
			i = skipSpace(line, i)
			if i == len(line) {
				return syntaxAt(line, i)
			}
			c := line[i]
			i = skipSpace(line, i+1)
			if c == '}' {
				break
			}
			if c != ',' {
				return syntaxAt(line, i-1)
			}
		}
	}
	if skipSpace(line, i) != len(line) {
		return errors.New("data after the JSON object")
	}
	r.v2 = seen&v2Fields != 0
	for idx, name := range fieldNames {
		if seen&(1<<idx) == 0 && (r.v2 || v1Fields&(1<<idx) != 0) {
			return fmt.Errorf("field %q is missing", name)
		}
	}
	return nil
}

func syntaxAt(line []byte, i int) error {
	if i >= len(line) {
		return fmt.Errorf("%w: unexpected end of JSON input", errSyntax)
	}
	return fmt.Errorf("%w: invalid character at offset %d", errSyntax, i)
}

func fieldIndex(key []byte) int {
	for i, name := range fieldNames {
		if string(key) == name {
			return i
		}
	}
	return -1
}

// startsValue reports whether c can start a JSON value.
func startsValue(c byte) bool {
	switch c {
	case '"', '{', '[', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// parseUint parses the JSON value at line[i] as the non-negative integer
// field name into dst and returns the offset after it.
func parseUint(line []byte, i int, name string, dst *uint64) (int, error) {
	c := line[i]
	if c != '-' && (c < '0' || c > '9') {
		if startsValue(c) {
			return 0, fmt.Errorf("field %q is not a number", name)
		}
		return 0, syntaxAt(line, i)
	}
	start := i
	end, integer := scanNumber(line, i)
	if end < 0 {
		return 0, syntaxAt(line, -end-1)
	}
	if integer {
		n, err := strconv.ParseUint(string(line[start:end]), 10, 64)
		if err == nil {
			*dst = n
			return end, nil
		}
	}
	return 0, fmt.Errorf("field %q is not a non-negative integer", name)
}

// scanNumber scans the JSON number at b[i] and returns the offset after it
// and whether it is a plain non-negative integer, or -(offset+1) of the
// first byte that breaks the grammar.
func scanNumber(b []byte, i int) (end int, integer bool) {
	integer = true
	if b[i] == '-' {
		integer = false
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		digits()
	default:
		return -(i + 1), false
	}
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		if digits() == 0 {
			return -(i + 1), false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return -(i + 1), false
		}
	}
	return i, integer
}

// str parses the JSON string starting with the quote at line[i] and
// returns its unescaped bytes and the offset after the closing quote. A
// string without escapes is returned in place.
func (d *decoder) str(line []byte, i int) ([]byte, int, error) {
	i++
	start := i
	for i < len(line) {
		c := line[i]
		switch {
		case c == '"':
			return line[start:i], i + 1, nil
		case c == '\\':
			return d.unescape(line, start, i)
		case c < 0x20:
			return nil, 0, syntaxAt(line, i)
		}
		i++
	}
	return nil, 0, syntaxAt(line, i)
}

// unescape continues str from the first backslash at line[i], writing the
// string into d.buf, the way encoding/json unquotes: a lone or unpaired
// surrogate becomes U+FFFD.
func (d *decoder) unescape(line []byte, start, i int) ([]byte, int, error) {
	from := len(d.buf)
	d.buf = append(d.buf, line[start:i]...)
	for i < len(line) {
		c := line[i]
		switch {
		case c == '"':
			return d.buf[from:], i + 1, nil
		case c < 0x20:
			return nil, 0, syntaxAt(line, i)
		case c != '\\':
			d.buf = append(d.buf, c)
			i++
			continue
		}
		if i+1 == len(line) {
			return nil, 0, syntaxAt(line, i+1)
		}
		switch e := line[i+1]; e {
		case '"', '\\', '/':
			d.buf = append(d.buf, e)
		case 'b':
			d.buf = append(d.buf, '\b')
		case 'f':
			d.buf = append(d.buf, '\f')
		case 'n':
			d.buf = append(d.buf, '\n')
		case 'r':
			d.buf = append(d.buf, '\r')
		case 't':
			d.buf = append(d.buf, '\t')
		case 'u':
			rr := hex4(line, i)
			if rr < 0 {
				return nil, 0, syntaxAt(line, i)
			}
			i += 6
			if utf16.IsSurrogate(rr) {
				if dec := utf16.DecodeRune(rr, hex4(line, i)); dec != utf8.RuneError {
					d.buf = utf8.AppendRune(d.buf, dec)
					i += 6
					continue
				}
				rr = utf8.RuneError
			}
			d.buf = utf8.AppendRune(d.buf, rr)
			continue
		default:
			return nil, 0, syntaxAt(line, i+1)
		}
		i += 2
	}
	return nil, 0, syntaxAt(line, i)
}

// hex4 decodes the escape \uXXXX at b[i], or returns -1.
func hex4(b []byte, i int) rune {
	if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[i+2 : i+6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// validate checks the values of a decoded line, in the order the errors
// are reported. Messages never repeat a value.
func (r *rawRecord) validate(line []byte) error {
	if r.seq == 0 {
		return errors.New("seq is 0; records are numbered from 1")
	}
	var ok bool
	if r.ts, ok = parseTimestamp(r.str[fTimestamp]); !ok {
		return errors.New("timestamp is not an RFC 3339 UTC time as rotor writes it")
	}
	if !isLowerHexBytes(r.str[fPrevHash], hashHexLen) {
		return fmt.Errorf("prev_hash is not %d lowercase hex characters", hashHexLen)
	}
	if !isLowerHexBytes(r.str[fHash], hashHexLen) {
		return fmt.Errorf("hash is not %d lowercase hex characters", hashHexLen)
	}
	switch {
	case len(r.str[fInitiator]) == 0:
		return errors.New("initiator is empty")
	case len(r.str[fAction]) == 0:
		return errors.New("action is empty")
	case !validStatus(string(r.str[fStatus])):
		return errors.New("status is not one of started, succeeded, failed, denied")
	case len(r.str[fKeyID]) != 0 && !isLowerHexBytes(r.str[fKeyID], keyid.Len):
		return fmt.Errorf("key_id is not a key id (want %d lowercase hex characters)", keyid.Len)
	case r.v2 && r.storeVersion == 0:
		return errors.New("store_version is 0; saves are counted from 1")
	case r.v2 && !isLowerHexBytes(r.str[fStateDigest], hashHexLen):
		return fmt.Errorf("state_digest is not %d lowercase hex characters", hashHexLen)
	case r.v2 && len(r.str[fSecret]) == 0:
		return errors.New("store_version is set but secret is empty")
	}
	// The limit applies to the record as rotor writes it, so the writer
	// and every reader agree on it whatever escapes the line used. No
	// byte of a line encodes to more than maxEscapeLen bytes, so only
	// long lines need encoding to know.
	if len(line)*maxEscapeLen > maxLineSize {
		if enc, err := encodeRecord(r.record()); err != nil {
			return err
		} else if len(enc) > maxLineSize {
			return fmt.Errorf("record is %d bytes long as rotor writes it, more than the limit of %d", len(enc), maxLineSize)
		}
	}
	return nil
}

// maxEscapeLen is the most bytes encoding/json writes for one byte of
// input: a control character becomes \u00XX.
const maxEscapeLen = 6

func isLowerHexBytes(b []byte, n int) bool {
	if len(b) != n {
		return false
	}
	var bad byte
	for _, c := range b {
		bad |= notLowerHex[c]
	}
	return bad == 0
}

// notLowerHex is 1 for every byte that is not a lowercase hex digit; a
// table lookup checks a hash without a branch per byte.
var notLowerHex = func() (t [256]byte) {
	for i := range t {
		if !('0' <= i && i <= '9' || 'a' <= i && i <= 'f') {
			t[i] = 1
		}
	}
	return t
}()

// parseTimestamp parses a timestamp in exactly the form formatTimestamp
// writes (RFC 3339 in UTC, nanoseconds without trailing zeros) and
// reports whether it was in that form. It is the fast equivalent of
// time.Parse followed by a comparison with the formatted result.
func parseTimestamp(b []byte) (time.Time, bool) {
	// 2006-01-02T15:04:05[.999999999]Z
	const base = len("2006-01-02T15:04:05")
	if len(b) < base+1 || b[len(b)-1] != 'Z' ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(lo, hi int) int {
		n := 0
		for _, c := range b[lo:hi] {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 ||
		minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := b[base : len(b)-1]; len(frac) > 0 {
		// A fraction is written only when not zero, with at most nine
		// digits and no trailing zero.
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 || frac[len(frac)-1] == '0' {
			return time.Time{}, false
		}
		if nsec = num(base+1, len(b)-1); nsec < 0 {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // the day does not exist in that month
		return time.Time{}, false
	}
	return t, true
}

// hasher computes record hashes, reusing its MAC and buffer from record
// to record.
type hasher struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
	hex [hashHexLen]byte
}

func newHasher(salt []byte) *hasher { return &hasher{mac: hmac.New(sha256.New, salt)} }

// hash returns the hex chain hash of r; it is valid until the next call.
// It is recordHash for a rawRecord.
func (h *hasher) hash(r *rawRecord) []byte {
	var num [20]byte
	b := append(h.buf[:0], r.str[fPrevHash]...)
	if r.v2 {
		b = appendCanonical(b, []byte(recordDomainV2))
	} else {
		b = appendCanonical(b, []byte(recordDomain))
	}
	b = appendCanonical(b, strconv.AppendUint(num[:0], r.seq, 10))
	for _, f := range r.str[:fPrevHash] {
		b = appendCanonical(b, f)
	}
	if r.v2 {
		b = appendCanonical(b, strconv.AppendUint(num[:0], r.storeVersion, 10))
		b = appendCanonical(b, r.str[fStateDigest])
	}
	b = appendCanonical(b, r.str[fPrevHash])
	h.buf = b
	h.mac.Reset()
	h.mac.Write(b)
	hex.Encode(h.hex[:], h.mac.Sum(h.sum[:0]))
	return h.hex[:]
}

// appendCanonical appends f preceded by its length, as writeCanonical
// writes it.
func appendCanonical(b, f []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
	return append(b, f...)
}

// checker checks a chain one record at a time, in order, from the first
// record: the one verifier of this package, whatever holds the chain.
type checker struct {
	dec  decoder
	hash *hasher
	rec  rawRecord
	n    uint64           // records checked
	head [hashHexLen]byte // hash of the last record checked
	last time.Time        // timestamp of the last record checked
	// adopt makes the next record's seq, prev_hash and timestamp the
	// chain's so far, as claimed: for a section of a log that does not
	// start it, whose first link the caller checks (walkSections).
	adopt bool
}

func newChecker(salt []byte) *checker {
	c := &checker{hash: newHasher(salt)}
	copy(c.head[:], GenesisHash)
	return c
}

// headHash is the hash of the last record checked, or GenesisHash.
func (c *checker) headHash() string { return string(c.head[:]) }

// next checks line as the record after the ones checked so far and
// returns it, valid until the next call. A problem is a *ChainError naming
// the seq expected; the caller adds where the line was.
func (c *checker) next(line []byte) (*rawRecord, *ChainError) {
	seq := c.n + 1
	if err := c.dec.decode(line, &c.rec); err != nil {
		return nil, &ChainError{Seq: seq, Reason: "the line is not a valid record", Err: err}
	}
	r := &c.rec
	if c.adopt {
		c.adopt = false
		c.n = r.seq - 1
		copy(c.head[:], r.str[fPrevHash])
		c.last = r.ts
		seq = r.seq
	}
	switch {
	case !hmac.Equal(r.str[fHash], c.hash.hash(r)):
		return nil, &ChainError{Seq: seq, Reason: "the hash does not match the record: the record was modified or forged"}
	case r.seq != seq:
		return nil, &ChainError{Seq: seq, Reason: fmt.Sprintf("found seq %d: records were deleted, inserted or reordered", r.seq)}
	case !bytes.Equal(r.str[fPrevHash], c.head[:]):
		return nil, &ChainError{Seq: seq, Reason: "prev_hash is not the hash of the record before: records were deleted, inserted or reordered"}
	case r.ts.Before(c.last):
		// Writers never go back (see nextTimestamp): a record dated
		// before the one it follows was written by a clock that was
		// bent, or by somebody holding the salt.
		return nil, &ChainError{Seq: seq, Reason: "the timestamp is earlier than the record before's: time went backwards"}
	}
	c.n = r.seq
	c.last = r.ts
	copy(c.head[:], r.str[fHash])
	return r, nil
}
