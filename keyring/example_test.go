package keyring_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/keyring"
)

// The environment `rotor run` gives a process during a grace period.
var env = map[string]string{
	"CLERK_SECRET_KEY_PRIMARY":   "sk_test_new_example_key",
	"CLERK_SECRET_KEY_SECONDARY": "sk_test_old_example_key",
}

func getenv(name string) string { return env[name] }

func ExampleNew() {
	// In an application: keyring.EnvSource("CLERK_SECRET_KEY", os.Getenv,
	// keyring.WithSalt(salt)) so that ids match what rotor prints.
	kr, err := keyring.New(context.Background(), keyring.EnvSource("CLERK_SECRET_KEY", getenv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	// Poll for changes until the context is cancelled.
	stop := kr.Start(context.Background())
	defer stop()

	// Ask for the key at every use; printing it shows its id only.
	key := kr.Current()
	fmt.Println("current key:", key)
	fmt.Println("previous key:", kr.Set().Previous)
	fmt.Println("value length:", len(key.Value))
	// Output:
	// current key: 50c233befb7a88f0
	// previous key: b36f876888923ce8
	// value length: 23
}

func ExampleKeyring_Transport() {
	kr, err := keyring.New(context.Background(), keyring.EnvSource("CLERK_SECRET_KEY", getenv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	// An API that does not accept the new key yet.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk_test_old_example_key" {
			fmt.Println("API: 401 for", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Println("API: 200 for", r.Method, r.URL.Path)
		fmt.Fprint(w, `{"keys":[]}`)
	}))
	defer api.Close()

	client := &http.Client{Transport: kr.Transport(nil), Timeout: 10 * time.Second}
	resp, err := client.Get(api.URL + "/v1/jwks")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))

	// A POST without an Idempotency-Key is never sent twice.
	resp, err = client.Post(api.URL+"/v1/invitations", "application/json", strings.NewReader(`{}`))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output:
	// API: 401 for GET /v1/jwks
	// API: 200 for GET /v1/jwks
	// 200 OK {"keys":[]}
	// API: 401 for POST /v1/invitations
	// 401 Unauthorized
}

func ExampleKeyring_Do() {
	kr, err := keyring.New(context.Background(), keyring.EnvSource("CLERK_SECRET_KEY", getenv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	// callAPI stands for any client library call.
	callAPI := func(ctx context.Context, key keyring.Key) error {
		if key.Value != "sk_test_old_example_key" {
			// Report a rejected key by wrapping ErrUnauthorized.
			return fmt.Errorf("list users with key %s: %w", key, keyring.ErrUnauthorized)
		}
		fmt.Println("listed users with key", key)
		return nil
	}
	if err := kr.Do(context.Background(), callAPI); err != nil {
		fmt.Println(err)
	}
	// Output:
	// listed users with key b36f876888923ce8
}

func ExampleKeyring_Sign() {
	kr, err := keyring.New(context.Background(), keyring.StaticSource(keyring.Set{
		Current: keyring.Key{Value: "whsec_new_example", ID: "k2"},
		Previous: &keyring.Key{Value: "whsec_old_example", ID: "k1",
			ExpiresAt: time.Now().Add(24 * time.Hour)},
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	msg := []byte(`{"event":"invoice.paid"}`)
	sig := kr.Sign(msg)
	fmt.Println(sig)
	fmt.Println("verify:", kr.Verify(msg, sig))

	err = kr.Verify([]byte(`{"event":"invoice.refunded"}`), sig)
	fmt.Println("tampered:", err, errors.Is(err, keyring.ErrInvalidSignature))

	err = kr.Verify(msg, "v1,k0,"+sig[len("v1,k2,"):])
	fmt.Println("unknown key:", errors.Is(err, keyring.ErrUnknownKey))
	// Output:
	// v1,k2,cTJWcGjCIXV3w10LFFXHkENaayXFzc-_TPfTUIW4BUo
	// verify: <nil>
	// tampered: verify: key k2: invalid signature true
	// unknown key: true
}

func ExampleKeyring_HealthHandler() {
	at := time.Date(2026, 11, 25, 23, 32, 13, 0, time.UTC)
	kr, err := keyring.New(context.Background(), keyring.StaticSource(keyring.Set{
		Current:  keyring.Key{Value: "sk_test_new_example_key", ID: "6ea95d6bde2ace20"},
		Previous: &keyring.Key{Value: "sk_test_old_example_key", ID: "a5c56e05f09bd9f3", ExpiresAt: at.Add(24 * time.Hour)},
		Version:  "7",
	}), keyring.WithClock(func() time.Time { return at }))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /keyring/health", kr.HealthHandler())

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/keyring/health", nil))
	fmt.Print(rec.Body.String())
	// Output:
	// {"status":"ok","key_ids":{"current":"6ea95d6bde2ace20","previous":"a5c56e05f09bd9f3","next":""},"version":"7","last_refresh":"2026-11-25T23:32:13Z","last_error":"","refresh_interval_seconds":30}
}

func ExampleKeyring_Update() {
	kr, err := keyring.New(context.Background(), keyring.StaticSource(keyring.Set{Current: keyring.Key{Value: "v1-secret", ID: "k1"}}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	kr.OnChange(func(old, new keyring.Set) {
		fmt.Printf("key set changed: current %v -> %v\n", old.Current, new.Current)
	})
	// A push client (such as a watch on rotor's daemon) hands over each
	// new set; an invalid one is refused and the keyring keeps its keys.
	fmt.Println(kr.Update(keyring.Set{}))
	fmt.Println(kr.Update(keyring.Set{
		Current:  keyring.Key{Value: "v2-secret", ID: "k2"},
		Previous: &keyring.Key{Value: "v1-secret", ID: "k1"},
	}))
	// Output:
	// update: no current key
	// key set changed: current k1 -> k2
	// <nil>
}

// The variables rotor run gives a process during a grace period, and the
// same set read back.
func ExampleEnvVars() {
	set := keyring.Set{
		Current:  keyring.Key{Value: "sk_test_new", ID: "6ea95d6bde2ace20"},
		Previous: &keyring.Key{Value: "sk_test_old", ID: "a5c56e05f09bd9f3"},
	}
	vars := keyring.EnvVars("CLERK_SECRET_KEY", set)
	for _, v := range vars {
		fmt.Println(v)
	}
	env := map[string]string{}
	for _, v := range vars {
		name, value, _ := strings.Cut(v, "=")
		env[name] = value
	}
	back, err := keyring.EnvSource("CLERK_SECRET_KEY", func(name string) string { return env[name] }).Load(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println("read back:", back.Current, back.Previous)
	// Output:
	// CLERK_SECRET_KEY=sk_test_new
	// CLERK_SECRET_KEY_PRIMARY=sk_test_new
	// CLERK_SECRET_KEY_SECONDARY=sk_test_old
	// CLERK_SECRET_KEY_KEY_ID=6ea95d6bde2ace20
	// CLERK_SECRET_KEY_SECONDARY_KEY_ID=a5c56e05f09bd9f3
	// read back: 6ea95d6bde2ace20 a5c56e05f09bd9f3
}
