package file

import (
	"testing"
	"time"
)

// TestWatchReportsSaves: saves by another Store of the same directory (as
// another process would) are reported by name, creates and updates alike,
// and nothing is reported after stop.
func TestWatchReportsSaves(t *testing.T) {
	st, dir, identity := newTestStore(t)
	other, err := New(dir, identity)
	if err != nil {
		t.Fatal(err)
	}
	names := make(chan string, 64)
	stop, err := st.Watch(func(name string) { names <- name })
	if err != nil {
		t.Fatal(err)
	}
	next := func(want string) {
		t.Helper()
		select {
		case got := <-names:
			if got != want {
				t.Fatalf("reported %q, want %q", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no change reported for %s", want)
		}
	}
	v := create(t, other, "Api-Key")
	next("Api-Key")
	for len(names) > 0 { // one save may be reported more than once
		<-names
	}
	if _, err := other.Save(t.Context(), testSecret("Api-Key"), v); err != nil {
		t.Fatal(err)
	}
	next("Api-Key")
	stop()
	for len(names) > 0 {
		<-names
	}
	create(t, other, "after-stop")
	if len(names) != 0 {
		t.Fatalf("reported %q after stop", <-names)
	}
}
