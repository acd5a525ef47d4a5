package server_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshots, when set, is where TestPageInBrowser saves the README's
// pictures of the status page:
//
//	go test ./server -run TestPageInBrowser -screenshots ../docs
var screenshots = flag.String("screenshots", "", "save screenshots of the status page to this directory")

// browserTimeout bounds the whole browser session: start, every page and
// every click.
const browserTimeout = 2 * time.Minute

// chromiumPath finds Debian's chromium (scripts/test.sh installs it), or
// the browser named by ROTOR_CHROMIUM.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ROTOR_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium found: install Debian's chromium (as root: apt-get install -y chromium; scripts/test.sh does) or set ROTOR_CHROMIUM")
	return ""
}

// TestPageInBrowser drives the status page in headless Chromium, one
// browser for the whole test: a bad token is refused, an admin logs in,
// sees the table, rotates through the button and the confirmation and
// sees the new key id; a post without the CSRF token is refused; a viewer
// sees the table and the trail but no buttons.
func TestPageInBrowser(t *testing.T) {
	e := newEnv(t)
	e.api.AuditVerified(nil)
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 820),
		// The flags Chromium needs on a machine with no network but
		// loopback (see /work/.library/env/machines/go.md): headless, no
		// sandbox (CI runs as root), and none of its background traffic.
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	// do runs steps; get runs one step that returns a value. Both fail
	// the test, naming what the test was doing.
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(what string, sel chromedp.CSS) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: text of %s: %v", what, sel, err)
		}
		return v
	}
	eval := func(what, expr string) int {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[int](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	// keep saves what the browser rendered, for the leak scan, and a
	// screenshot when asked to.
	keep := func(screenshot string) {
		t.Helper()
		html, err := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		e.mu.Lock()
		e.outputs = append(e.outputs, html)
		e.mu.Unlock()
		if *screenshots == "" || screenshot == "" {
			return
		}
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot()) // the window, as PNG
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.MkdirAll(*screenshots, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*screenshots, screenshot), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	login := func(token string) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(e.srv.URL+"/login"),
			chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), token),
			chromedp.Click(chromedp.ID("login")),
		)
	}

	do("log in with a bad token", login("rtr_nobody_0000000000000000000000000000"), chromedp.WaitVisible(chromedp.ID("flash")))
	keep("")
	if msg := text("bad token", "#flash"); !strings.Contains(msg, "not accepted") {
		t.Fatalf("bad token: the page says %q", msg)
	}

	before := e.currentID("clerk")
	do("log in as admin", login(tokAdmin), chromedp.WaitVisible(chromedp.ID("secrets")))
	keep("status-page.png")
	if table := text("admin's table", "#secrets"); !strings.Contains(table, before) {
		t.Fatalf("admin's table lacks the current key id %s:\n%s", before, table)
	}
	if n := eval("read cookies", `document.cookie.length`); n != 0 {
		t.Errorf("the page's script can read %d bytes of cookies: the session cookie must be HttpOnly", n)
	}

	do("rotate: the button leads to a confirmation",
		chromedp.Click(chromedp.CSS("#secret-clerk button.rotate")), chromedp.WaitVisible(chromedp.ID("confirm")))
	keep("status-page-confirm.png")
	if q := text("confirmation", "h2"); q != "Rotate clerk?" || e.currentID("clerk") != before {
		t.Fatalf("confirmation page asks %q; current key %s (before %s)", q, e.currentID("clerk"), before)
	}

	do("rotate: confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("flash")))
	keep("")
	after := e.currentID("clerk")
	flash, row := text("after rotation", "#flash"), text("after rotation", "#secret-clerk td.current")
	if after == before || !strings.Contains(flash, after) || !strings.Contains(row, after) {
		t.Fatalf("after the confirmed rotation: current %s (before %s), flash %q, row %q", after, before, flash, row)
	}

	// The page has no script, but the browser runs one for the test: a
	// same-origin post that carries the session cookie and no CSRF token.
	status := eval("post without a CSRF token", `fetch("/secrets/clerk/rotate", {method: "POST", body: new URLSearchParams({})}).then(r => r.status)`)
	if status != 403 || e.currentID("clerk") != after {
		t.Fatalf("post without a CSRF token: %d, current %s (want 403, %s)", status, e.currentID("clerk"), after)
	}

	do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("token")))
	do("log in as viewer", login(tokViewer), chromedp.WaitVisible(chromedp.ID("secrets")))
	keep("")
	controls := eval("count the viewer's controls", `document.querySelectorAll("button.rotate, button.rollback, form[action^='/secrets/']").length`)
	if controls != 0 {
		t.Errorf("the viewer's page has %d rotate/rollback controls, want none", controls)
	}
	if !strings.Contains(text("viewer's table", "#secrets"), after) || !strings.Contains(text("viewer's trail", "#audit"), "token:admin") {
		t.Errorf("the viewer's page lacks the key id or the admin's rotation in the trail")
	}
	e.checkNoLeaks()
}
