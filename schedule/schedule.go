// Package schedule decides when a secret is next due for rotation.
//
// # Rules
//
// A [Schedule] has a base rule, either an interval (every 720h after the
// last rotation) or a cron expression (the first cron time after the last
// rotation), an optional jitter, and optional allowed windows (weekdays
// 09:00-16:00 UTC, say).
//
// Jitter spreads rotations of many secrets so they do not all land at once.
// It is deterministic: an offset in [0, jitter) derived from the secret's
// name and its last rotation time, so every stateless cron run (and every
// daemon replica) computes the same due time without sharing state.
//
// Windows restrict when a rotation may start. A due time outside every
// window moves to the start of the next window; [Schedule.Due] is false
// outside the windows even for an overdue secret.
package schedule

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is when one secret rotates.
type Schedule struct {
	Every   time.Duration
	Cron    cron.Schedule // when set, replaces Every
	Jitter  time.Duration
	Windows []Window
}

// Window is a weekly time range during which rotations may start.
type Window struct {
	Days       []time.Weekday // empty: every day
	Start, End time.Duration  // offsets from midnight; End > Start
	Loc        *time.Location
}

// ParseCron parses a standard five-field cron expression (or a descriptor
// such as @monthly).
func ParseCron(expr string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid cron expression %q: %w", expr, err)
	}
	return s, nil
}

// ParseWindow builds a window from config strings: days such as "mon" or
// "monday" (empty: every day), "09:00" and "16:00", and a time zone name
// (empty: UTC).
func ParseWindow(days []string, start, end, tz string) (Window, error) {
	var w Window
	for _, d := range days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return w, fmt.Errorf("unknown day %q (want mon, tue, …)", d)
		}
		w.Days = append(w.Days, wd)
	}
	var err error
	if w.Start, err = clock(start); err != nil {
		return w, err
	}
	if w.End, err = clock(end); err != nil {
		return w, err
	}
	if end == "24:00" {
		w.End = 24 * time.Hour
	}
	if w.End <= w.Start {
		return w, fmt.Errorf("window end %s is not after its start %s", end, start)
	}
	w.Loc = time.UTC
	if tz != "" {
		if w.Loc, err = time.LoadLocation(tz); err != nil {
			return w, fmt.Errorf("unknown time zone %q", tz)
		}
	}
	return w, nil
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday, "mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday, "wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday, "fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

func clock(s string) (time.Duration, error) {
	if s == "24:00" {
		return 24 * time.Hour, nil
	}
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("invalid time of day %q (want HH:MM)", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// Validate reports a schedule that can never fire.
func (s Schedule) Validate() error {
	if s.Cron == nil && s.Every <= 0 {
		return errors.New("schedule needs every or cron")
	}
	if s.Jitter < 0 {
		return errors.New("jitter must not be negative")
	}
	return nil
}

// Next returns when the secret called name, last rotated at last, becomes
// due. A secret never rotated (zero last) is due at once.
func (s Schedule) Next(name string, last time.Time) time.Time {
	if last.IsZero() {
		return time.Time{}
	}
	var base time.Time
	if s.Cron != nil {
		base = s.Cron.Next(last)
	} else {
		base = last.Add(s.Every)
	}
	base = base.Add(s.jitter(name, last))
	return s.nextAllowed(base)
}

// Due reports whether the secret should be rotated at now.
func (s Schedule) Due(name string, last, now time.Time) bool {
	return !now.Before(s.Next(name, last)) && s.Allowed(now)
}

// Allowed reports whether now is inside an allowed window (always, when
// there are none).
func (s Schedule) Allowed(now time.Time) bool {
	if len(s.Windows) == 0 {
		return true
	}
	for _, w := range s.Windows {
		if w.contains(now) {
			return true
		}
	}
	return false
}

func (s Schedule) jitter(name string, last time.Time) time.Duration {
	if s.Jitter <= 0 {
		return 0
	}
	h := sha256.Sum256([]byte(name + "\x00" + last.UTC().Format(time.RFC3339Nano)))
	return time.Duration(binary.BigEndian.Uint64(h[:8]) % uint64(s.Jitter))
}

// nextAllowed returns t if it is inside a window, else the earliest window
// start after it.
func (s Schedule) nextAllowed(t time.Time) time.Time {
	if s.Allowed(t) {
		return t
	}
	var best time.Time
	for _, w := range s.Windows {
		if n := w.nextStart(t); best.IsZero() || n.Before(best) {
			best = n
		}
	}
	return best
}

func (w Window) loc() *time.Location {
	if w.Loc != nil {
		return w.Loc
	}
	return time.UTC
}

func (w Window) dayOK(d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, x := range w.Days {
		if x == d {
			return true
		}
	}
	return false
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

func (w Window) contains(t time.Time) bool {
	t = t.In(w.loc())
	if !w.dayOK(t.Weekday()) {
		return false
	}
	off := t.Sub(midnight(t))
	return off >= w.Start && off < w.End
}

// nextStart returns the first window start after t (within two weeks).
func (w Window) nextStart(t time.Time) time.Time {
	t = t.In(w.loc())
	day := midnight(t)
	for i := 0; i < 15; i++ {
		d := day.AddDate(0, 0, i)
		start := d.Add(w.Start)
		if w.dayOK(d.Weekday()) && start.After(t) {
			return start
		}
	}
	return t
}
