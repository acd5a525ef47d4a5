package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/clerkfake"
)

// The Platform API routes as the emulator counts them (operation ids from
// Clerk's platform/beta.yml in clerk/openapi-specs).
const (
	platformRotateRoute = "POST /v1/platform/applications/{applicationID}/instances/{envOrInsID}/rotate_secret_keys" // PlatformRotateInstanceSecretKeys
	platformGetAppRoute = "GET /v1/platform/applications/{applicationID}"                                            // PlatformGetApplication
)

const testPlatformToken = "platform-api-token-for-cli-tests-0123456789"

// platformRig is a rotor directory whose clerk-secret-key is rotated in
// platform mode against an emulated Clerk production instance.
type platformRig struct {
	t    *testing.T
	fake *clerkfake.Server
	dir  string
	outs []procResult
}

const platformSecret = "clerk-secret-key"

func newPlatformRig(t *testing.T) *platformRig {
	t.Helper()
	fake := clerkfake.New(t, clerkfake.Live(), clerkfake.WithPlatformToken(testPlatformToken))
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	cfg := strings.Replace(defaultConfig, `secrets:
  - name: demo
    provider: random   # app-owned key: 32 random bytes
    random:
      bytes: 32
      encoding: base64url
`, fmt.Sprintf(`secrets:
  - name: %s
    provider: clerk
    clerk:
      api_url: %s
      timeout: 5s
      platform:
        application_id: %s
        instance: production
`, platformSecret, fake.URL(), fake.ApplicationID()), 1)
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &platformRig{t: t, fake: fake, dir: dir}
}

// run runs rotor with the Platform API token in its environment (and env
// after it), at the given clock skew, and wants exit code want.
func (r *platformRig) run(want int, skew time.Duration, env []string, args ...string) procResult {
	r.t.Helper()
	env = append([]string{"CLERK_PLATFORM_API_TOKEN=" + testPlatformToken, fmt.Sprintf("ROTOR_CLOCK_SKEW=%s", skew)}, env...)
	res := rotor(r.t, r.dir, env, args...)
	r.outs = append(r.outs, res)
	if res.code != want {
		r.t.Fatalf("rotor %s: exit %d, want %d\n%s%s", strings.Join(args, " "), res.code, want, res.stdout, res.stderr)
	}
	return res
}

// slot returns the key id in a slot, or "" when it is empty.
func (r *platformRig) slot(skew time.Duration, slot string) string {
	r.t.Helper()
	res := rotor(r.t, r.dir, []string{fmt.Sprintf("ROTOR_CLOCK_SKEW=%s", skew)}, "get", platformSecret, "--slot", slot)
	if res.code != 0 {
		return ""
	}
	return strings.TrimSpace(res.stdout)
}

// value returns the key in a slot (rotor get --reveal), kept out of the
// outputs the leak check reads.
func (r *platformRig) value(skew time.Duration, slot string) string {
	r.t.Helper()
	res := rotor(r.t, r.dir, []string{fmt.Sprintf("ROTOR_CLOCK_SKEW=%s", skew)}, "get", platformSecret, "--slot", slot, "--reveal")
	if res.code != 0 {
		r.t.Fatalf("get --reveal %s: exit %d\n%s", slot, res.code, res.stderr)
	}
	return strings.TrimSpace(res.stdout)
}

func (r *platformRig) keyWorks(key string) bool {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.fake.URL()+"/v1/jwks", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := r.fake.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestClerkPlatformThirtyDayCycle runs what a cron job runs — `rotor rotate
// --due` and `rotor revoke --expired` — once a day for three 30-day
// periods, with rotor's and Clerk's clocks moved together, and no operator
// step at all: every 30 days one PlatformRotateInstanceSecretKeys call with
// a 24h delay (the grace) creates the new key, the old key keeps working
// through the grace period, Clerk deletes it when the delay is over, and
// the next revoke confirms and clears it.
func TestClerkPlatformThirtyDayCycle(t *testing.T) {
	r := newPlatformRig(t)
	original := r.fake.Key()
	seen := []string{original}
	day := 24 * time.Hour
	rotations := 0
	// Ticks: the days on which something happens, and one quiet day each.
	for _, d := range []int{0, 1, 2, 30, 31, 45, 60, 61} {
		skew := time.Duration(d) * day
		r.fake.SetNow(r.fakeStart().Add(skew))
		before := r.slot(skew, "current")
		r.run(0, skew, nil, "rotate", "--due")
		r.run(0, skew, nil, "revoke", "--expired")
		after := r.slot(skew, "current")
		if d%30 == 0 {
			rotations++
			if after == before {
				t.Fatalf("day %d: rotate --due did not rotate", d)
			}
			cur, prev := r.value(skew, "current"), original
			if d > 0 {
				prev = r.value(skew, "previous")
			}
			if !r.keyWorks(cur) || !r.keyWorks(prev) {
				t.Fatalf("day %d: the new and the old key must both work during the grace period", d)
			}
			seen = append(seen, cur)
		} else if after != before {
			t.Fatalf("day %d: rotated although not due", d)
		}
		if d%30 == 1 {
			if r.slot(skew, "previous") != "" {
				t.Fatalf("day %d: previous not cleared once Clerk deleted it", d)
			}
			for _, old := range seen[:len(seen)-1] {
				if r.keyWorks(old) {
					t.Fatalf("day %d: Clerk still accepts an old key after the delay", d)
				}
			}
		}
	}
	rots := r.fake.PlatformRotations()
	if len(rots) != rotations || r.fake.Requests(platformRotateRoute) != rotations {
		t.Fatalf("rotate calls = %d (%d requests), want %d", len(rots), r.fake.Requests(platformRotateRoute), rotations)
	}
	for _, rot := range rots {
		if rot.DelayHours != 24 || !strings.Contains(rot.Reason, platformSecret) {
			t.Fatalf("rotate call %+v: want delay 24h (the grace) and the secret in the reason", rot)
		}
	}
	if r.fake.KeyCount() != 1 {
		t.Fatalf("Clerk holds %d keys, want the current one only", r.fake.KeyCount())
	}
	r.outs = append(r.outs, r.run(0, 61*day, nil, "audit", "verify"))
	leakCheck(t, r.dir, r.outs, append(seen, testPlatformToken)...)
}

// fakeStart is the emulator's clock at day 0 of a test.
func (r *platformRig) fakeStart() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }

// TestClerkPlatformWrongToken: with a wrong or missing Platform API token
// the rotation stops with an error naming the variable and the
// clerk.platform.token_env key, never the token, and nothing changes, in
// rotor or at Clerk.
func TestClerkPlatformWrongToken(t *testing.T) {
	r := newPlatformRig(t)
	r.run(0, 0, nil, "rotate", platformSecret)
	cur := r.slot(0, "current")
	const wrong = "wrong-platform-token-abcdefghijklmnop"
	for name, env := range map[string][]string{
		"wrong": {"CLERK_PLATFORM_API_TOKEN=" + wrong},
		"unset": {"CLERK_PLATFORM_API_TOKEN="},
	} {
		res := r.run(exitError, 0, env, "rotate", platformSecret)
		if !strings.Contains(res.stderr, "CLERK_PLATFORM_API_TOKEN (clerk.platform.token_env)") {
			t.Fatalf("%s token: the error does not name token_env:\n%s", name, res.stderr)
		}
	}
	if r.slot(0, "current") != cur || r.slot(0, "pending") != "" || len(r.fake.PlatformRotations()) != 1 {
		t.Fatal("a refused token changed something")
	}
	if st := rotor(t, r.dir, nil, "status", platformSecret, "-o", "json"); strings.Contains(st.stdout, `"rotation": {`) {
		t.Fatalf("a rotation was left behind:\n%s", st.stdout)
	}
	leakCheck(t, r.dir, r.outs, wrong, testPlatformToken)
}

// TestClerkPlatformRetries: the emulator answers 429, then 503, then loses
// the answer of a rotate it performed. The 429 is retried (Clerk did not
// act) and the rotation completes; the 503 and the lost answer are not
// retried (Clerk may have acted), so the run fails; the next run reads
// Clerk's key first and either rotates (nothing happened) or takes the key
// of the lost answer without a second rotate call.
func TestClerkPlatformRetries(t *testing.T) {
	r := newPlatformRig(t)
	r.run(0, 0, nil, "rotate", platformSecret)
	calls := func() int { return r.fake.Requests(platformRotateRoute) }

	r.fake.FailNextOn(platformRotateRoute, 1, http.StatusTooManyRequests, time.Second)
	r.fake.FailNextOn(platformGetAppRoute, 1, http.StatusServiceUnavailable, 0)
	before := r.slot(0, "current")
	r.run(0, 0, nil, "rotate", platformSecret)
	if calls() != 3 || len(r.fake.PlatformRotations()) != 2 || r.slot(0, "current") == before {
		t.Fatalf("after a 429: %d rotate requests, %d rotations; want 3 and 2 with a new current", calls(), len(r.fake.PlatformRotations()))
	}

	before = r.slot(0, "current")
	r.fake.FailNextOn(platformRotateRoute, 1, http.StatusServiceUnavailable, 0)
	r.run(exitError, 0, nil, "rotate", platformSecret)
	if calls() != 4 || r.slot(0, "current") != before {
		t.Fatalf("a 503 on rotate was retried (%d requests) or changed current", calls())
	}
	r.run(0, 0, nil, "rotate", platformSecret) // Clerk did not act: rotate
	if calls() != 5 || len(r.fake.PlatformRotations()) != 3 {
		t.Fatalf("rerun after a 503: %d requests, %d rotations", calls(), len(r.fake.PlatformRotations()))
	}

	before = r.slot(0, "current")
	r.fake.LoseNextAnswer(platformRotateRoute, http.StatusBadGateway)
	r.run(exitError, 0, nil, "rotate", platformSecret)
	if calls() != 6 || len(r.fake.PlatformRotations()) != 4 {
		t.Fatalf("lost answer: %d requests, %d rotations", calls(), len(r.fake.PlatformRotations()))
	}
	res := r.run(0, 0, nil, "rotate", platformSecret) // Clerk acted: take its key
	if calls() != 6 || len(r.fake.PlatformRotations()) != 4 {
		t.Fatalf("the rerun after a lost answer rotated again (%d requests)", calls())
	}
	if r.slot(0, "current") == before || r.slot(0, "previous") != before {
		t.Fatalf("the key of the lost answer is not current over the old one:\n%s", res.stdout)
	}
	if !r.keyWorks(r.value(0, "current")) {
		t.Fatal("the recovered key does not work")
	}
	leakCheck(t, r.dir, r.outs, testPlatformToken)
}

// TestClerkPlatformSIGKILLAfterTheRotateCall kills rotor with SIGKILL right
// after Clerk answered the rotate call and before the new key was saved
// (ROTOR_FAULT=crash-after:minted), at a rotation picked by a seeded
// random number. The next `rotor rotate --due` recovers the key Clerk
// created (PlatformGetApplication with include_secret_keys=true) and
// finishes the rotation: exactly one rotate call at the emulator for it,
// the recovery in the audit trail and no possibly orphaned key, both keys
// working through the grace period.
func TestClerkPlatformSIGKILLAfterTheRotateCall(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	crashAt := int(seed%3) + 1 // which of three rotations is killed
	r := newPlatformRig(t)
	day := 24 * time.Hour
	for i := 1; i <= 3; i++ {
		skew := time.Duration(i*31) * day
		r.fake.SetNow(r.fakeStart().Add(skew))
		before := r.slot(skew, "current")
		calls := r.fake.Requests(platformRotateRoute)
		if i == crashAt {
			env := []string{"CLERK_PLATFORM_API_TOKEN=" + testPlatformToken, fmt.Sprintf("ROTOR_CLOCK_SKEW=%s", skew), "ROTOR_FAULT=crash-after:minted"}
			killed := rotor(t, r.dir, env, "rotate", "--due")
			r.outs = append(r.outs, killed)
			if !killed.killed {
				t.Fatalf("rotation %d: rotor was not killed after the rotate call (exit %d)\n%s", i, killed.code, killed.stderr)
			}
			if r.fake.Requests(platformRotateRoute) != calls+1 || r.slot(skew, "current") != before {
				t.Fatalf("rotation %d: the killed run made %d rotate calls or changed current", i, r.fake.Requests(platformRotateRoute)-calls)
			}
		}
		res := r.run(0, skew, nil, "rotate", "--due")
		if r.fake.Requests(platformRotateRoute) != calls+1 {
			t.Fatalf("rotation %d: %d rotate calls, want exactly 1\n%s", i, r.fake.Requests(platformRotateRoute)-calls, res.stdout)
		}
		if i == crashAt && !strings.Contains(res.stdout, "resumed") {
			t.Fatalf("rotation %d: the run after the crash did not resume:\n%s", i, res.stdout)
		}
		cur := r.value(skew, "current")
		if r.slot(skew, "current") == before || !r.keyWorks(cur) || i > 1 && !r.keyWorks(r.value(skew, "previous")) {
			t.Fatalf("rotation %d: current did not move to a working key, or previous stopped working", i)
		}
		if st := rotor(t, r.dir, nil, "status", platformSecret, "-o", "json"); strings.Contains(st.stdout, `"rotation": {`) {
			t.Fatalf("rotation %d: an unfinished rotation is reported:\n%s", i, st.stdout)
		}
		r.fake.Advance(25 * time.Hour)
		r.run(0, skew+25*time.Hour, nil, "revoke", "--expired")
	}
	trail := r.run(0, 94*day, nil, "audit", "tail", "-n", "0", "-o", "json")
	if strings.Contains(trail.stdout, "orphaned") || !strings.Contains(trail.stdout, "recovered the key minted for request") {
		t.Fatalf("the audit trail reports an orphan, or no recovery:\n%s", trail.stdout)
	}
	r.outs = append(r.outs, trail, r.run(0, 94*day, nil, "audit", "verify"))
	leakCheck(t, r.dir, r.outs, testPlatformToken)
}

// TestClerkPlatformRollbackThenRotationBeforeTheIssuerDeletes: a rollback
// within the deletion delay makes current a key Clerk deletes at the end of
// that delay. rotor records the deadline on the key (status shows it, in
// JSON and text), warns at rollback with it, and `rotor rotate --due` —
// not due by the 30-day interval — rotates half a grace period before it,
// while the restored key still works; after the deadline Clerk rejects it
// and revoke confirms.
func TestClerkPlatformRollbackThenRotationBeforeTheIssuerDeletes(t *testing.T) {
	r := newPlatformRig(t)
	at := func(d time.Duration) time.Duration {
		r.fake.SetNow(r.fakeStart().Add(d))
		return d
	}
	day := 24 * time.Hour
	r.run(0, at(0), nil, "rotate", "--due")
	skew := at(30 * day)
	r.run(0, skew, nil, "rotate", "--due")
	k1 := r.value(skew, "previous")
	st := r.run(0, skew, nil, "status", platformSecret, "-o", "json")
	if !strings.Contains(st.stdout, `"issuer_expires_at"`) {
		t.Fatalf("status does not show when Clerk deletes the previous key:\n%s", st.stdout)
	}

	skew = at(30*day + time.Hour)
	rb := r.run(0, skew, nil, "rollback", platformSecret)
	if !strings.Contains(rb.stderr, "warning") || !strings.Contains(rb.stderr, "the issuer deletes key") {
		t.Fatalf("rollback does not warn of the issuer's deadline:\n%s", rb.stderr)
	}
	if r.value(skew, "current") != k1 {
		t.Fatal("rollback did not restore the previous key")
	}
	text := r.run(0, skew, nil, "status", platformSecret)
	if !strings.Contains(text.stdout, "issuer deletes it") {
		t.Fatalf("status does not show the current key's deadline:\n%s", text.stdout)
	}

	calls := len(r.fake.PlatformRotations())
	skew = at(30*day + 2*time.Hour)
	if res := r.run(0, skew, nil, "rotate", "--due"); !strings.Contains(res.stdout, "not due") || len(r.fake.PlatformRotations()) != calls {
		t.Fatalf("rotated long before the deadline:\n%s", res.stdout)
	}
	skew = at(30*day + 13*time.Hour) // half the 24h grace before Clerk deletes k1
	r.run(0, skew, nil, "rotate", "--due")
	if len(r.fake.PlatformRotations()) != calls+1 || r.value(skew, "current") == k1 || r.value(skew, "previous") != k1 {
		t.Fatal("rotate --due did not rotate away from the key Clerk deletes")
	}
	if !r.keyWorks(k1) || !r.keyWorks(r.value(skew, "current")) {
		t.Fatal("the restored key must work until its deadline, the new one at once")
	}
	at(31*day + time.Minute)
	if r.keyWorks(k1) {
		t.Fatal("Clerk still accepts the restored key after its deadline")
	}
	r.run(0, at(31*day+14*time.Hour), nil, "revoke", "--expired")
	if r.slot(31*day+14*time.Hour, "previous") != "" {
		t.Fatal("revoke did not confirm and clear the deleted key")
	}
	leakCheck(t, r.dir, r.outs, k1, testPlatformToken)
}

// TestClerkPlatformTokenFromARotorSecret: the Platform API token is itself
// a secret rotor keeps (staged once; named so that its variable is
// token_env's default), handed to the rotation by `rotor run`: no token in
// the cron job's environment or in rotor.yaml.
func TestClerkPlatformTokenFromARotorSecret(t *testing.T) {
	token := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("platform-token!!", 2))) // 32 bytes, as random checks
	fake := clerkfake.New(t, clerkfake.Live(), clerkfake.WithPlatformToken(token))
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	writeConfigWithout(t, dir, fmt.Sprintf(`  - name: clerk-platform-api-token   # rotor run writes CLERK_PLATFORM_API_TOKEN
    provider: random                   # never minted: staged from the Clerk Dashboard
    every: 87600h
    random: {bytes: 32, encoding: base64url}
  - name: %s
    provider: clerk
    clerk:
      api_url: %s
      platform: {application_id: %s, instance: production}
`, platformSecret, fake.URL(), fake.ApplicationID()))
	var outs []procResult
	run := func(env []string, args ...string) {
		t.Helper()
		r := rotor(t, dir, append([]string{"CLERK_PLATFORM_API_TOKEN="}, env...), args...)
		outs = append(outs, r)
		if r.code != 0 {
			t.Fatalf("rotor %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	run([]string{"PLATFORM_TOKEN=" + token}, "stage", "clerk-platform-api-token", "--from-env", "PLATFORM_TOKEN")
	run(nil, "rotate", "clerk-platform-api-token")
	run(nil, "run", "--secret", "clerk-platform-api-token", "--", rotorBin, "rotate", platformSecret)
	if n := len(fake.PlatformRotations()); n != 1 {
		t.Fatalf("rotate calls = %d, want 1", n)
	}
	leakCheck(t, dir, outs, token)
}
