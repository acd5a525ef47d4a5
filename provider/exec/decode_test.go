package exec

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeResponse(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		in, action string
		wantErr    string // "" = valid
	}{
		"mint":               {`{"version":2,"value":"v-1234","meta":{"a":"b"}}`, ActionMint, ""},
		"test ok":            {`{"version":2}`, ActionTest, ""},
		"revoke ok, spaces":  {" \n{\"version\":2}\n\n", ActionRevoke, ""},
		"rejected":           {`{"version":2,"error":"no","rejected":true}`, ActionTest, ""},
		"rejected, no error": {`{"version":2,"rejected":true}`, ActionTest, ""},
		"value and error":    {`{"version":2,"value":"v-1234","error":"x"}`, ActionMint, "both a value and an error"},
		"array":              {`[1]`, ActionTest, "want a JSON object, got array"},
		"null version":       {`{"version":null}`, ActionTest, "no version"},
		"string version":     {`{"version":"1"}`, ActionTest, `field "version" has the wrong type`},
		"bad meta key":       {`{"version":2,"value":"v-1234","meta":{"a b":"c"}}`, ActionMint, "meta keys"},
		"meta not strings":   {`{"version":2,"value":"v-1234","meta":{"a":1}}`, ActionMint, "wrong type"},
		"trailing garbage":   {`{"version":2}x`, ActionTest, "more than one JSON value"},
		"duplicate field":    {`{"version":2,"version":3}`, ActionTest, "unsupported protocol version 3"},
		"version 1":          {`{"version":1,"value":"v-1234"}`, ActionMint, "protocol version 1; rotor speaks version 2 (mint requests carry a request_id"},
	}
	for name, tt := range tests {
		_, err := decodeResponse([]byte(tt.in), tt.action, "sent-value")
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: decodeResponse = %v, want nil", name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: decodeResponse = %v, want an error containing %q", name, err, tt.wantErr)
		}
	}
}

// FuzzDecodeResponse checks that decoding never panics, that what it
// accepts obeys the protocol, and that its errors never quote the input.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"version":2,"value":"v-1234","meta":{"k":"v"}}`,
		`{"version":2}`,
		`{"version":2,"error":"e","rejected":true}`,
		`{"version":1}`,
		`{"version":2,"zzzzzzzzzzzz":1}`,
		`{"version":2,"value":123456789012}`,
		`{"version":2,"value":"secretsecret"} trailing`,
		`not json secretsecret`,
		``,
	} {
		for _, a := range []string{ActionMint, ActionTest, ActionRevoke} {
			f.Add([]byte(s), a)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, action string) {
		r, err := decodeResponse(data, action, "sent-secret-value")
		if err != nil {
			msg := err.Error()
			if len(msg) > 200 {
				t.Fatalf("error longer than 200 bytes: %q", msg)
			}
			// Whatever the input, an error only names protocol fields.
			if len(data) >= 12 && strings.Contains(msg, string(data)) {
				t.Fatalf("error quotes the input: %q", msg)
			}
			var probe struct{ Value string }
			if json.Unmarshal(data, &probe) == nil && len(probe.Value) >= 6 && strings.Contains(msg, probe.Value) {
				t.Fatalf("error quotes the value: %q", msg)
			}
			return
		}
		if r.Version != ProtocolVersion {
			t.Fatalf("accepted version %d", r.Version)
		}
		failed := r.Error != "" || r.Rejected
		if failed && r.Value != "" {
			t.Fatal("accepted a value with an error")
		}
		if !failed && (action == ActionMint) != (r.Value != "") {
			t.Fatalf("accepted value %t for %q", r.Value != "", action)
		}
		for k, v := range r.Meta {
			if !metaKey.MatchString(k) || len(v) > maxMetaValue || r.Value != "" && len(r.Value) >= minRedactLen && strings.Contains(v, r.Value) {
				t.Fatalf("accepted meta %q", k)
			}
		}
	})
}
