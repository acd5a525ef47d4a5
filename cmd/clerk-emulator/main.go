// Command clerk-emulator serves rotor's Clerk Backend API emulator
// (internal/clerkfake) as a standalone process, for tests written in other
// languages (the Node SDK's suites) and for trying rotor without a Clerk
// account:
//
//	go run ./cmd/clerk-emulator --listen 127.0.0.1:0 [--live] [--key sk_test_…]... [--application-id app_…]
//
// It prints its base URL (what CLERK_API_URL and rotor's api_url take,
// without /v1) as the first line on stdout once it accepts connections,
// and runs until SIGINT or SIGTERM.
//
// # Backend API
//
// The routes Clerk's Backend API documents and rotor uses, as package
// clerkfake describes them: GET /v1/jwks, GET /v1/users,
// GET /v1/users/count, the machine routes; an unknown or deleted instance
// key answers 401 clerk_key_invalid. The instance starts with the keys
// given by --key (else one it makes up, which the process never prints:
// create keys through the test-control API instead).
//
// # Platform API
//
// The instance belongs to an application (--application-id, default
// app_emulator) whose instance secret keys Clerk's Platform API rotates:
// PlatformRotateInstanceSecretKeys, PlatformRotateSecretKeys and
// PlatformGetApplication, as package clerkfake describes them. The access
// token it accepts is read from the environment variable named by
// --platform-token-env (default CLERK_PLATFORM_API_TOKEN, the variable
// rotor reads too); when that is unset every Platform call answers 401.
// The instance is the development one (environment type development, id
// ins_emulator_development), or with --live the production one.
//
// # Test control
//
// Everything that Clerk does through its Dashboard or Frontend API is under
// /_admin/, apart from the Backend API, and needs no key. Never expose it.
//
//	POST   /_admin/keys            {"name":…}             → 201 {"id","name","secret"}   create an instance key
//	DELETE /_admin/keys            {"secret":…}|{"id":…}  → 204 (404 unknown)           delete (revoke) one
//	POST   /_admin/session_tokens  {"sub","sid","ttl_seconds"} → 201 {"jwt"}           a session token signed with the instance key
//	GET    /_admin/instance                               → 200 {"environment","publishable_key","application_id","instance_id"}
//	POST   /_admin/clock           {"advance_seconds":n}  → 200 {"now"}                 move the emulator's clock (grace periods, deletion delays)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rotor-dev/rotor/internal/clerkfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "clerk-emulator: error:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// keyList is the repeatable --key flag.
type keyList []string

func (k *keyList) String() string { return fmt.Sprintf("%d keys", len(*k)) }

// Set accepts any value: package flag quotes a refused value in its error,
// and a key must never be echoed. run checks the keys after parsing.
func (k *keyList) Set(v string) error {
	*k = append(*k, v)
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clerk-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on (loopback only)")
	live := fs.Bool("live", false, "a production instance: keys are sk_live_…")
	var keys keyList
	fs.Var(&keys, "key", "an active instance secret key to start with (repeatable)")
	appID := fs.String("application-id", "app_emulator", "the id of the application the instance belongs to (Platform API)")
	tokenEnv := fs.String("platform-token-env", "CLERK_PLATFORM_API_TOKEN", "environment variable holding the Platform API access token to accept")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	for i, k := range keys {
		if !strings.HasPrefix(k, "sk_test_") && !strings.HasPrefix(k, "sk_live_") {
			return fmt.Errorf("%w: --key #%d: want a key starting with sk_test_ or sk_live_", errUsage, i+1)
		}
	}
	if !strings.HasPrefix(*appID, "app_") || strings.ContainsAny(*appID, "/?#% ") {
		return fmt.Errorf("%w: --application-id %q: want app_…", errUsage, *appID)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%w: --listen %q: want a loopback address such as 127.0.0.1:0", errUsage, *listen)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	opts := []clerkfake.Option{clerkfake.WithListener(ln), clerkfake.WithKeys(keys...), clerkfake.WithApplicationID(*appID)}
	token := getenv(*tokenEnv)
	if token != "" {
		opts = append(opts, clerkfake.WithPlatformToken(token))
	}
	if *live {
		opts = append(opts, clerkfake.Live())
	}
	s := clerkfake.Start(opts...)
	defer s.Close()
	fmt.Fprintln(stdout, s.URL())
	fmt.Fprintf(stderr, "clerk-emulator: %s instance with %d key(s) at %s (test control under /_admin/)\n", s.Environment(), s.KeyCount(), s.URL())
	if token != "" {
		fmt.Fprintf(stderr, "clerk-emulator: Platform API: application %s, instance %s, token from %s\n", s.ApplicationID(), s.InstanceID(), *tokenEnv)
	} else {
		fmt.Fprintf(stderr, "clerk-emulator: Platform API: %s is not set, every Platform call answers 401\n", *tokenEnv)
	}
	<-ctx.Done()
	return nil
}
