package schedule

import (
	"testing"
	"time"
)

func mustWindow(t *testing.T, days []string, start, end, tz string) Window {
	t.Helper()
	w, err := ParseWindow(days, start, end, tz)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// 2026-11-25 is a Wednesday.
var wed = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func TestNext(t *testing.T) {
	weekdays := []string{"mon", "tue", "wed", "thu", "fri"}
	monthly, err := ParseCron("0 10 1 * *")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		s      Schedule
		last   time.Time
		want   time.Time
		reason string
	}{
		{"never rotated", Schedule{Every: time.Hour}, time.Time{}, time.Time{}, "a secret without a key is due at once"},
		{"every", Schedule{Every: 720 * time.Hour}, wed, wed.Add(720 * time.Hour), "interval after the last rotation"},
		{"cron", Schedule{Cron: monthly}, wed, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), "first cron time after the last rotation"},
		{"inside window", Schedule{Every: 24 * time.Hour, Windows: []Window{mustWindow(t, weekdays, "09:00", "16:00", "")}}, wed, wed.Add(24 * time.Hour), "Thursday 10:00 is inside"},
		{"after hours moves to next start", Schedule{Every: 8 * time.Hour, Windows: []Window{mustWindow(t, weekdays, "09:00", "16:00", "")}}, wed, time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), "Wednesday 18:00 waits for Thursday 09:00"},
		{"weekend moves to monday", Schedule{Every: 72 * time.Hour, Windows: []Window{mustWindow(t, weekdays, "09:00", "16:00", "")}}, wed, time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), "Saturday waits for Monday"},
		{"time zone", Schedule{Every: 4 * time.Hour, Windows: []Window{mustWindow(t, nil, "09:00", "17:00", "America/New_York")}}, wed, time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC), "14:00 UTC is 09:00 in New York"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Next("demo", tt.last); !got.Equal(tt.want) {
				t.Fatalf("Next = %v, want %v (%s)", got, tt.want, tt.reason)
			}
		})
	}
}

func TestJitterIsDeterministicAndBounded(t *testing.T) {
	s := Schedule{Every: 720 * time.Hour, Jitter: 6 * time.Hour}
	a := s.Next("clerk-secret-key", wed)
	if !a.Equal(s.Next("clerk-secret-key", wed)) {
		t.Fatal("jitter differs between two computations: stateless cron runs would disagree")
	}
	if d := a.Sub(wed.Add(720 * time.Hour)); d < 0 || d >= 6*time.Hour {
		t.Fatalf("jitter %v outside [0, 6h)", d)
	}
	spread := map[time.Time]bool{}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		spread[s.Next(n, wed)] = true
	}
	if len(spread) < 4 {
		t.Fatalf("jitter does not spread secrets: %d distinct times for 8 secrets", len(spread))
	}
}

func TestDueRespectsWindows(t *testing.T) {
	s := Schedule{Every: time.Hour, Windows: []Window{mustWindow(t, []string{"mon", "tue", "wed", "thu", "fri"}, "09:00", "16:00", "")}}
	last := wed.Add(-48 * time.Hour)
	if !s.Due("demo", last, wed) {
		t.Fatal("overdue secret inside the window is not due")
	}
	if s.Due("demo", last, time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)) {
		t.Fatal("overdue secret is due outside the window")
	}
	if s.Due("demo", last, time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)) {
		t.Fatal("due on a Saturday")
	}
}

func TestParseErrors(t *testing.T) {
	for name, f := range map[string]func() error{
		"bad day":      func() error { _, err := ParseWindow([]string{"funday"}, "09:00", "10:00", ""); return err },
		"bad time":     func() error { _, err := ParseWindow(nil, "9am", "10:00", ""); return err },
		"end <= start": func() error { _, err := ParseWindow(nil, "10:00", "09:00", ""); return err },
		"bad zone":     func() error { _, err := ParseWindow(nil, "09:00", "10:00", "Mars/Olympus"); return err },
		"bad cron":     func() error { _, err := ParseCron("every tuesday"); return err },
		"no rule":      func() error { return Schedule{}.Validate() },
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
