package audit

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

// validLine is a record as Append writes it.
func validLine(t testing.TB) []byte {
	r := Record{
		Seq:       7,
		Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC),
		Event:     event(1),
		PrevHash:  GenesisHash,
	}
	r.Hash = recordHash(testSalt, &r)
	line, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(line, []byte("\n"))
}

// validLineV2 is a version 2 line: the record of a save.
func validLineV2(t testing.TB) []byte {
	e := event(1)
	e.StoreVersion, e.StateDigest = 3, strings.Repeat("d", 64)
	r := Record{Seq: 7, Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC), Event: e, PrevHash: GenesisHash}
	r.Hash = recordHash(testSalt, &r)
	line, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(line, []byte("\n"))
}

func TestParseRecordV2(t *testing.T) {
	valid := string(validLineV2(t))
	replace := func(old, new string) string {
		if !strings.Contains(valid, old) {
			t.Fatalf("%q not in %s", old, valid)
		}
		return strings.Replace(valid, old, new, 1)
	}
	d := strings.Repeat("d", 64)
	tests := []struct {
		name    string
		line    string
		wantErr string
	}{
		{"valid", valid, ""},
		{"fields in another order", strings.Replace(replace(`"store_version":3,`, ``), `{"seq":7,`, `{"store_version":3,"seq":7,`, 1), ""},
		{"version without digest", replace(`,"state_digest":"`+d+`"`, ``), `field "state_digest" is missing`},
		{"digest without version", replace(`"store_version":3,`, ``), `field "store_version" is missing`},
		{"version zero", replace(`"store_version":3`, `"store_version":0`), "store_version is 0"},
		{"version a string", replace(`"store_version":3`, `"store_version":"3"`), `field "store_version" is not a number`},
		{"version negative", replace(`"store_version":3`, `"store_version":-3`), "non-negative integer"},
		{"digest not hex", replace(`"state_digest":"d`, `"state_digest":"D`), "state_digest is not"},
		{"digest is a number", replace(`"state_digest":"`+d+`"`, `"state_digest":1`), `field "state_digest" is not a string`},
		{"no secret", replace(`"secret":"clerk"`, `"secret":""`), "secret is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecord([]byte(tt.line))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseRecord: %v", err)
				}
				if r.StoreVersion != 3 || r.StateDigest != d {
					t.Errorf("ParseRecord = %+v, want store version 3 and the digest", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseRecord = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestRecordV2HashDomain checks that a save's fields are covered by the
// hash and that a version 2 record hashes in a domain of its own: taking
// its two fields away, or changing either, breaks the hash.
func TestRecordV2HashDomain(t *testing.T) {
	line := validLineV2(t)
	r := mustParse(t, line)
	if got := recordHash(testSalt, &r); got != r.Hash {
		t.Fatalf("recordHash of the parsed record = %s, want %s", got, r.Hash)
	}
	for name, edit := range map[string]func(*Record){
		"as version 1":    func(r *Record) { r.StoreVersion, r.StateDigest = 0, "" },
		"another version": func(r *Record) { r.StoreVersion++ },
		"another digest":  func(r *Record) { r.StateDigest = strings.Repeat("e", 64) },
	} {
		e := r
		edit(&e)
		if recordHash(testSalt, &e) == r.Hash {
			t.Errorf("%s: the hash did not change", name)
		}
	}
	var (
		d   decoder
		raw rawRecord
	)
	if err := d.decode(line, &raw); err != nil {
		t.Fatal(err)
	}
	if h := string(newHasher(testSalt).hash(&raw)); h != r.Hash {
		t.Fatalf("fast hasher = %s, want %s", h, r.Hash)
	}
}

func TestParseRecord(t *testing.T) {
	valid := string(validLine(t))
	replace := func(old, new string) string {
		if !strings.Contains(valid, old) {
			t.Fatalf("%q not in %s", old, valid)
		}
		return strings.Replace(valid, old, new, 1)
	}
	h := strings.Repeat("a", 64)
	tests := []struct {
		name    string
		line    string
		wantErr string // "" for a line that parses
	}{
		{"valid", valid, ""},
		{"valid with newline", valid + "\n", ""},
		{"valid with surrounding blanks", " \t" + valid + " ", ""},
		{"valid with escapes", replace(`"action":"rotate.promote"`, `"action":"rot\u0061te.promote"`), ""},
		{"empty", "", "invalid JSON"},
		{"not an object", `[1,2]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"truncated", valid[:len(valid)/2], "invalid JSON"},
		{"two objects", valid + valid, "data after the JSON object"},
		{"trailing garbage", valid + "x", "data after the JSON object"},
		{"two lines", valid + "\n" + valid, "contains a newline"},
		{"unknown field", replace(`{"seq":7,`, `{"seq":7,"extra":"x",`), `unknown field "extra"`},
		{"missing field", replace(`"detail":`, `"detail_":`), `unknown field "detail_"`},
		{"missing hash", replace(`,"hash":"`+mustParse(t, []byte(valid)).Hash+`"`, ""), `field "hash" is missing`},
		{"duplicate field", replace(`{"seq":7,`, `{"seq":7,"seq":7,`), `field "seq" appears twice`},
		{"duplicate string field", replace(`"action":"rotate.promote"`, `"action":"rotate.promote","action":"revoke"`), `field "action" appears twice`},
		{"seq is a string", replace(`"seq":7`, `"seq":"7"`), "not a number"},
		{"seq is negative", replace(`"seq":7`, `"seq":-7`), "non-negative integer"},
		{"seq is a fraction", replace(`"seq":7`, `"seq":7.0`), "non-negative integer"},
		{"seq has an exponent", replace(`"seq":7`, `"seq":7e0`), "non-negative integer"},
		{"seq overflows", replace(`"seq":7`, `"seq":18446744073709551616`), "non-negative integer"},
		{"seq is zero", replace(`"seq":7`, `"seq":0`), "seq is 0"},
		{"string field is null", replace(`"secret":"clerk"`, `"secret":null`), `field "secret" is not a string`},
		{"string field is a number", replace(`"secret":"clerk"`, `"secret":1`), `field "secret" is not a string`},
		{"string field is an object", replace(`"secret":"clerk"`, `"secret":{}`), `field "secret" is not a string`},
		{"timestamp not UTC", replace(`03:04:05.123456789Z`, `04:04:05.123456789+01:00`), "timestamp"},
		{"timestamp with trailing zero", replace(`05.123456789Z`, `05.123456780Z`), "timestamp"},
		{"timestamp not canonical", replace(`2025-01-02T03:04:05.123456789Z`, `2025-01-02T03:04:05.1234567890Z`), "timestamp"},
		{"timestamp not a time", replace(`2025-01-02T03:04:05.123456789Z`, `yesterday`), "timestamp"},
		{"unknown status", replace(`"status":"succeeded"`, `"status":"done"`), "status is not one of"},
		{"empty action", replace(`"action":"rotate.promote"`, `"action":""`), "action is empty"},
		{"empty initiator", replace(`"initiator":"user:ana"`, `"initiator":""`), "initiator is empty"},
		{"key id is a secret value", replace(`"key_id":"`, `"key_id":"sk_live_`), "key_id is not a key id"},
		{"prev_hash uppercase", replace(`"prev_hash":"`+GenesisHash, `"prev_hash":"`+strings.ToUpper(h)), "prev_hash is not"},
		{"prev_hash short", replace(`"prev_hash":"`+GenesisHash, `"prev_hash":"`+GenesisHash[:63]), "prev_hash is not"},
		{"hash not hex", replace(`"hash":"`, `"hash":"zz`), "hash is not"},
		{"invalid UTF-8", replace(`"secret":"clerk"`, "\"secret\":\"cl\xffrk\""), "not valid UTF-8"},
		{"raw control character", replace(`"secret":"clerk"`, "\"secret\":\"cl\x01rk\""), "invalid JSON"},
		{"too long", replace(`"detail":"`, `"detail":"`+strings.Repeat("x", maxLineSize)), "limit"},
		{"too long once re-encoded", replace(`"detail":"`, `"detail":"`+strings.Repeat("\u2028", maxLineSize/4)), "as rotor writes it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecord([]byte(tt.line))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseRecord: %v", err)
				}
				if r.Seq != 7 || r.Action != "rotate.promote" || r.Timestamp.IsZero() {
					t.Errorf("ParseRecord = %+v", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseRecord = %v, want an error containing %q", err, tt.wantErr)
			}
			if r != (Record{}) {
				t.Errorf("ParseRecord returned %+v with its error", r)
			}
		})
	}
}

func TestParseRecordKeepsSecretOutOfErrors(t *testing.T) {
	const secret = "sk_live_0123456789abcdef0123456789abcdef"
	valid := string(validLine(t))
	line := strings.Replace(valid, `"key_id":"`, `"key_id":"`+secret, 1)
	_, err := ParseRecord([]byte(line))
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("ParseRecord = %v, want an error that does not repeat the value", err)
	}
}

func FuzzParseRecord(f *testing.F) {
	valid := validLine(f)
	f.Add(valid)
	f.Add(append(bytes.Clone(valid), '\n'))
	f.Add(valid[:len(valid)/2])
	f.Add([]byte(""))
	f.Add([]byte("{}"))
	f.Add([]byte("null"))
	f.Add([]byte(`{"seq":1,"seq":2}`))
	f.Add(bytes.Replace(valid, []byte(`"seq":7`), []byte(`"seq":7e0`), 1))
	f.Add(bytes.Replace(valid, []byte(`"detail":"`), []byte(`"detail":"\u2028\u0000\ud800<>&`), 1))
	f.Add(bytes.Replace(valid, []byte(`"secret":"clerk"`), []byte(`"secret":null`), 1))
	f.Add(bytes.Replace(valid, []byte(`Z"`), []byte(`+00:00"`), 1))
	f.Add(bytes.Replace(valid, []byte(`{"seq":7,`), []byte(`{"seq":7,"x":[{}],`), 1))
	f.Add(validLineV2(f))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRecord(line)
		if err != nil {
			return
		}
		enc, err := encodeRecord(r)
		if err != nil {
			t.Fatalf("accepted record does not encode: %v", err)
		}
		r2, err := ParseRecord(enc)
		if err != nil {
			t.Fatalf("re-encoded record %s does not parse: %v", enc, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-parse differs:\n%+v\n%+v", r, r2)
		}
	})
}
