package awssm

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/store"
)

// literal matches JSON string literals worth checking for leaks.
var literal = regexp.MustCompile(`"([A-Za-z0-9_]{8,})"`)

// FuzzDecodeRecord feeds state documents that may be anything (the state
// secret is readable and writable by other tools) to the decoder: it must
// not panic, must round-trip what it accepts, and must not quote the
// document in its errors, since the document holds secret values.
func FuzzDecodeRecord(f *testing.F) {
	const name = "fuzzsecret"
	good, err := json.Marshal(record{
		Format: recordFormat, Secret: name, Serial: 3, Nonce: "n",
		Slots:   map[store.Slot]keyRecord{store.SlotCurrent: {VersionID: "v1", Value: "sk_live_current"}},
		Retired: []keyRecord{{Value: "sk_live_retired"}},
		Labels:  layout{Current: "v1"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":1,"secret":"fuzzsecret","slots":{"current":{"value":""}}}`))
	f.Add([]byte(`{"format":2,"secret":"fuzzsecret"}`))
	f.Add([]byte(`{"format":"sk_live_typeerror"}`))
	f.Add([]byte(`{"format":1,"secret":"sk_live_othername"}`))
	f.Add([]byte(`{"format":1,"secret":"fuzzsecret","slots":{"sk_live_badslot":{"value":"x"}}}`))
	f.Add([]byte(`{"format":1,"slots":sk_live_syntax}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b, name)
		if err != nil {
			// The name and slot names are the decoder's own words.
			msg := strings.NewReplacer(name, "", "previous", "").Replace(err.Error())
			for _, m := range literal.FindAllStringSubmatch(string(b), -1) {
				if lit := m[1]; strings.Contains(msg, lit) {
					t.Fatalf("error %q quotes %q from the document", msg, lit)
				}
			}
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		r2, err := decodeRecord(again, name)
		if err != nil {
			t.Fatalf("decode of a re-encoded record: %v", err)
		}
		third, _ := json.Marshal(r2)
		if string(third) != string(again) {
			t.Fatalf("record does not round-trip:\n%s\n%s", again, third)
		}
	})
}
