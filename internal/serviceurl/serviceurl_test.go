package serviceurl

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"https://api.clerk.com", "http://127.0.0.1:8080", "http://localhost:4566", "http://[::1]:1"} {
		if err := Check(ok, "https://x", "the key"); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://api.clerk.com", "ftp://h", "https://h/?q=1", "https://h/#f", "/relative", "https://"} {
		if err := Check(bad, "https://x", "the key"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestCheckNeverRepeatsCredentials: a URL carrying a password or token in
// its user info is refused without the message repeating it, also when
// url.Parse cannot read it.
func TestCheckNeverRepeatsCredentials(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	for _, raw := range []string{
		"https://user:" + secret + "@rotor.internal:8700",
		"https://" + secret + "@rotor.internal",
		"ftp://u:" + secret + "@h",
		"https://u:" + secret + " x@h", // unparsable
		"http://u:" + secret + "@example.com/%zz",
	} {
		err := Check(raw, "https://x", "the key")
		if err == nil {
			t.Fatalf("%q accepted", raw)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error repeats the credential: %v", err)
		}
	}
}
