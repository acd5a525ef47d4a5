package audit

// The parser rotor used before its fast decoder, kept as the reference the
// fast decoder is fuzzed against: both must accept exactly the same lines
// and return the same records.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// referenceFields lists the fields of a line; every one is required.
// referenceFieldsV2 lists those a version 2 line adds, both required when
// either is there.
var (
	referenceFields   = []string{"seq", "timestamp", "initiator", "action", "secret", "key_id", "status", "detail", "prev_hash", "hash"}
	referenceFieldsV2 = []string{"state_digest", "store_version"}
)

func referenceParseRecord(line []byte) (Record, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) >= maxLineSize {
		return Record{}, fmt.Errorf("line is %d bytes long, more than the limit of %d", len(line), maxLineSize-1)
	}
	if bytes.IndexByte(line, '\n') >= 0 {
		return Record{}, errors.New("line contains a newline")
	}
	if !utf8.Valid(line) {
		return Record{}, errors.New("line is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil {
		return Record{}, referenceSyntaxErr(err)
	} else if tok != json.Delim('{') {
		return Record{}, errors.New("line is not a JSON object")
	}
	var (
		w    wireRecordV2
		seen = make(map[string]bool, len(referenceFields))
	)
	strs := map[string]*string{
		"timestamp": &w.Timestamp, "initiator": &w.Initiator, "action": &w.Action,
		"secret": &w.Secret, "key_id": &w.KeyID, "status": &w.Status, "detail": &w.Detail,
		"prev_hash": &w.PrevHash, "hash": &w.Hash, "state_digest": &w.StateDigest,
	}
	nums := map[string]*uint64{"seq": &w.Seq, "store_version": &w.StoreVersion}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Record{}, referenceSyntaxErr(err)
		}
		key, _ := tok.(string) // the decoder only yields strings as keys
		if seen[key] {
			return Record{}, fmt.Errorf("field %q appears twice", key)
		}
		seen[key] = true
		val, err := dec.Token()
		if err != nil {
			return Record{}, referenceSyntaxErr(err)
		}
		if dst, ok := nums[key]; ok {
			num, ok := val.(json.Number)
			if !ok {
				return Record{}, fmt.Errorf("field %q is not a number", key)
			}
			*dst, err = strconv.ParseUint(string(num), 10, 64)
			if err != nil {
				return Record{}, fmt.Errorf("field %q is not a non-negative integer", key)
			}
			continue
		}
		dst, known := strs[key]
		if !known {
			return Record{}, fmt.Errorf("unknown field %q", key)
		}
		s, ok := val.(string)
		if !ok {
			return Record{}, fmt.Errorf("field %q is not a string", key)
		}
		*dst = s
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return Record{}, referenceSyntaxErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Record{}, errors.New("data after the JSON object")
	}
	v2 := seen["state_digest"] || seen["store_version"]
	for _, f := range append(slices.Clone(referenceFields), referenceFieldsV2...) {
		if !seen[f] && (v2 || slices.Contains(referenceFields, f)) {
			return Record{}, fmt.Errorf("field %q is missing", f)
		}
	}
	return w.referenceRecord(v2)
}

func referenceSyntaxErr(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// record validates w, a version 2 line when v2, and converts it.
func (w *wireRecordV2) referenceRecord(v2 bool) (Record, error) {
	if w.Seq == 0 {
		return Record{}, errors.New("seq is 0; records are numbered from 1")
	}
	ts, err := time.Parse(time.RFC3339Nano, w.Timestamp)
	if err != nil || formatTimestamp(ts) != w.Timestamp {
		return Record{}, errors.New("timestamp is not an RFC 3339 UTC time as rotor writes it")
	}
	if !isLowerHex(w.PrevHash, hashHexLen) {
		return Record{}, fmt.Errorf("prev_hash is not %d lowercase hex characters", hashHexLen)
	}
	if !isLowerHex(w.Hash, hashHexLen) {
		return Record{}, fmt.Errorf("hash is not %d lowercase hex characters", hashHexLen)
	}
	r := Record{
		Seq:       w.Seq,
		Timestamp: ts.UTC(),
		Event: Event{
			Initiator: w.Initiator,
			Action:    w.Action,
			Secret:    w.Secret,
			KeyID:     w.KeyID,
			Status:    w.Status,
			Detail:    w.Detail,
		},
		PrevHash: w.PrevHash,
		Hash:     w.Hash,
	}
	if v2 {
		switch {
		case w.StoreVersion == 0:
			return Record{}, errors.New("store_version is 0; saves are counted from 1")
		case !isLowerHex(w.StateDigest, hashHexLen):
			return Record{}, fmt.Errorf("state_digest is not %d lowercase hex characters", hashHexLen)
		case w.Secret == "":
			return Record{}, errors.New("store_version is set but secret is empty")
		}
		r.StoreVersion, r.StateDigest = w.StoreVersion, w.StateDigest
	}
	if err := r.validate(); err != nil {
		return Record{}, err
	}
	// The limit applies to the record as rotor writes it, so the writer
	// and every reader agree on it whatever escapes the line used.
	if line, err := encodeRecord(r); err != nil {
		return Record{}, err
	} else if len(line) > maxLineSize {
		return Record{}, fmt.Errorf("record is %d bytes long as rotor writes it, more than the limit of %d", len(line), maxLineSize)
	}
	return r, nil
}

// FuzzDecoderMatchesReference checks that the fast decoder accepts exactly
// the lines the reference parser accepts, returns the same record, and
// hashes it as recordHash does.
func FuzzDecoderMatchesReference(f *testing.F) {
	for _, seed := range decoderSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		want, wantErr := referenceParseRecord(line)
		got, gotErr := parseRecord(line)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("line %q: reference error %v, decoder error %v", line, wantErr, gotErr)
		}
		if wantErr != nil {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("line %q: decoder returned\n%+v\nreference\n%+v", line, got, want)
		}
		var (
			d   decoder
			raw rawRecord
		)
		if err := d.decode(line, &raw); err != nil {
			t.Fatal(err)
		}
		if h := string(newHasher(testSalt).hash(&raw)); h != recordHash(testSalt, &want) {
			t.Fatalf("line %q: raw hash %s, recordHash %s", line, h, recordHash(testSalt, &want))
		}
	})
}

// decoderSeeds are lines that exercise each branch of both parsers.
func decoderSeeds(tb testing.TB) [][]byte {
	valid := validLine(tb)
	rep := func(old, new string) []byte {
		return bytes.Replace(valid, []byte(old), []byte(new), 1)
	}
	v2 := validLineV2(tb)
	seeds := [][]byte{
		v2, bytes.Replace(v2, []byte(`"store_version":3`), []byte(`"store_version":0`), 1),
		bytes.Replace(v2, []byte(`"store_version":3,`), nil, 1),
		bytes.Replace(v2, []byte(`"store_version":3`), []byte(`"store_version":"3"`), 1),
		valid, append(bytes.Clone(valid), '\n'), valid[:len(valid)/2], nil, []byte("{}"), []byte("null"),
		[]byte(" [1]"), []byte("{,}"), []byte(`{"seq":1,}`), []byte("\t{ } "),
		rep(`"seq":7`, `"seq":7e0`), rep(`"seq":7`, `"seq":07`), rep(`"seq":7`, `"seq":-0`), rep(`"seq":7`, `"seq": 7 `),
		rep(`"seq":7`, `"seq":18446744073709551615`), rep(`"seq":7`, `"seq":1.5e+3`), rep(`"seq":7`, `"seq":true`),
		rep(`"detail":"`, `"detail":"\u2028\u0000\ud800<>&\ud83d\ude00\ud83d\u0041\/\b\f\n\r\t\"\\`),
		rep(`"detail":"`, `"detail":"\x7f\u00e9\u00E9 \ufffd`), rep(`"detail":"`, `"detail":"\q`),
		rep(`"secret":"clerk"`, `"secret":null`), rep(`"secret":"clerk"`, `"secret":[1,`),
		rep(`Z"`, `+00:00"`), rep(`.123456789Z`, `Z`), rep(`.123456789Z`, `.1Z`), rep(`.123456789Z`, `.10Z`),
		rep(`2025-01-02`, `2024-02-29`), rep(`2025-01-02`, `2025-02-29`), rep(`T03:`, `T24:`), rep(`:05.`, `:60.`),
		rep(`2025-01-02`, `0000-01-01`), rep(`2025-01-02T`, `2025-01-02t`), rep(`.123456789Z`, `,123456789Z`),
		rep(`{"seq":7,`, `{"seq":7,"x":[{}],`), rep(`{"seq":7,`, `{"s\u0065q":7,`), rep(`{"seq":7,`, `{"seq":7,"seq":7,`),
		rep(`"status":"succeeded"`, `"status":"done"`), rep(`"key_id":"`, `"key_id":"X`), rep(`"action":"rotate.promote"`, `"action":""`),
		rep(`"detail":"`, `"detail":"`+strings.Repeat(`\u2028`, maxLineSize/12)),
		rep(`"detail":"`, `"detail":"`+strings.Repeat("\u2028", maxLineSize/4)),
	}
	return seeds
}
