package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/field"
)

func TestValidate(t *testing.T) {
	valid := Options{URL: "postgres://db:5432/app?sslmode=verify-full", Roles: []string{"app_a", "app_b"}, AdminURLEnv: "PG_ADMIN"}
	tests := []struct {
		name   string
		edit   func(*Options)
		fields []string // fields with a problem; none: valid
	}{
		{"valid", func(*Options) {}, nil},
		{"template alone names both roles", func(o *Options) { o.Roles, o.TemplateRole = nil, "app" }, nil},
		{"single user with one role", func(o *Options) { o.Strategy, o.Roles = SingleUser, []string{"app"} }, nil},
		{"unknown strategy", func(o *Options) { o.Strategy = "rolling" }, []string{"strategy"}},
		{"single user with two roles", func(o *Options) { o.Strategy = SingleUser }, []string{"roles"}},
		{"single user cannot terminate its own sessions", func(o *Options) {
			o.Strategy, o.Roles, o.TerminateSessions = SingleUser, []string{"app"}, true
		}, []string{"terminate_sessions"}},
		{"one role for alternating", func(o *Options) { o.Roles = []string{"app_a"} }, []string{"roles"}},
		{"same role twice", func(o *Options) { o.Roles = []string{"app", "app"} }, []string{"roles[1]"}},
		{"reserved role name", func(o *Options) { o.Roles[1] = "pg_monitor" }, []string{"roles[1]"}},
		{"role name too long", func(o *Options) { o.Roles[0] = strings.Repeat("r", 64) }, []string{"roles[0]"}},
		{"url with a password", func(o *Options) { o.URL = "postgres://u:p@db/app" }, []string{"url"}},
		{"url without database", func(o *Options) { o.URL = "postgres://db:5432" }, []string{"url"}},
		{"url with password parameter", func(o *Options) { o.URL = "postgres://db/app?password=x" }, []string{"url"}},
		{"not a postgres url", func(o *Options) { o.URL = "mysql://db/app" }, []string{"url"}},
		{"no admin connection", func(o *Options) { o.AdminURLEnv = "" }, []string{"admin_url_env"}},
		{"two admin connections", func(o *Options) { o.AdminSecret = "pg-admin" }, []string{"admin_secret"}},
		{"unknown revoke mode", func(o *Options) { o.Revoke = "drop" }, []string{"revoke"}},
		{"too little entropy", func(o *Options) { o.PasswordLength = 16 }, []string{"password_length"}},
		{"entropy from a small alphabet", func(o *Options) { o.PasswordAlphabet = "01" }, []string{"password_length"}},
		{"duplicate alphabet character", func(o *Options) { o.PasswordAlphabet = "abca" }, []string{"password_alphabet"}},
		{"compatibility character", func(o *Options) { o.PasswordAlphabet = "abcﬁ" }, []string{"password_alphabet"}},
		{"combining mark", func(o *Options) { o.PasswordAlphabet = "abc\u0301" }, []string{"password_alphabet"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := valid
			o.Roles = append([]string(nil), valid.Roles...)
			tc.edit(&o)
			err := o.Validate()
			var got []string
			var list field.List
			if err != nil && !errors.As(err, &list) {
				t.Fatalf("Validate = %v, not a field.List", err)
			}
			for _, e := range list {
				got = append(got, e.Path.String())
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("problems in %v (%v), want %v", got, err, tc.fields)
			}
			if strings.Contains(o.URL, "u:p@") && err != nil && strings.Contains(err.Error(), "u:p") {
				t.Fatal("the error quotes the URL's credentials")
			}
		})
	}
}

// TestScramVerifierKnownAnswer pins the verifier format and arithmetic to
// the RFC 7677 example (user "user", password "pencil", its salt and 4096
// iterations), whose StoredKey and ServerKey PostgreSQL stores.
func TestScramVerifierKnownAnswer(t *testing.T) {
	salt := []byte{0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81} // W22ZaJ0SNY7soEsUEjb6gQ==
	got, err := scramVerifierWith("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	want := "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
	if got != want {
		t.Fatalf("verifier\n got %s\nwant %s", got, want)
	}
}

func TestGeneratedPasswords(t *testing.T) {
	alphabet := `'"\üé€ab`
	seen := map[string]bool{}
	for range 50 {
		pw, err := generatePassword(48, alphabet)
		if err != nil {
			t.Fatal(err)
		}
		if n := len([]rune(pw)); n != 48 || seen[pw] || !stable(pw) {
			t.Fatalf("password of %d characters, seen before %t, stable %t", n, seen[pw], stable(pw))
		}
		for _, r := range pw {
			if !strings.ContainsRune(alphabet, r) {
				t.Fatalf("character %U is not in the alphabet", r)
			}
		}
		seen[pw] = true
	}
}
