package keyring

import (
	"encoding/json"
	"net/http"
	"time"
)

// Health is the JSON document [Keyring.HealthHandler] serves. Its shape is
// a contract: rotor's verify step reads key_ids.current from every consumer
// to tell which ones adopted a new key, so fields are only ever added.
type Health struct {
	// Status is "ok" when the last refresh succeeded and "degraded" when
	// it failed (the keyring still serves its last good set).
	Status string `json:"status"`
	// KeyIDs are the ids of the keys in use.
	KeyIDs HealthKeyIDs `json:"key_ids"`
	// Version is the set's Version (empty when the source has none).
	Version string `json:"version"`
	// LastRefresh is when the set was last refreshed successfully, in RFC
	// 3339 format with nanoseconds, UTC.
	LastRefresh time.Time `json:"last_refresh"`
	// LastError is the error of the last refresh, empty if it succeeded.
	LastError string `json:"last_error"`
	// RefreshIntervalSeconds is how often, in seconds, the keyring looks
	// for a new set when it polls ([WithInterval], default
	// [DefaultInterval]): the longest a working consumer takes to adopt a
	// new key. Rotor's verify step waits at least this long, plus a
	// margin, before it calls a consumer that has not adopted the new key
	// a failure. A keyring that is pushed its sets adopts them sooner; the
	// interval still bounds it should the push stream break.
	RefreshIntervalSeconds float64 `json:"refresh_interval_seconds"`
}

// HealthKeyIDs are the key ids a [Health] reports: key ids as the source
// derived them (rotor's 16 lowercase hex characters for sets from rotor and
// for [EnvSource] with [WithSalt]), an empty string for an empty slot.
type HealthKeyIDs struct {
	// Current is the id of the key this process signs and calls with.
	Current string `json:"current"`
	// Previous is the id of the previous key while it is valid; empty
	// once it expired.
	Previous string `json:"previous"`
	// Next is the id of the pre-staged next key, if any.
	Next string `json:"next"`
}

// Health returns the keyring's health report: key ids, never values.
func (k *Keyring) Health() Health {
	st, s := k.state.Load(), k.status.Load()
	h := Health{
		Status:      "ok",
		KeyIDs:      HealthKeyIDs{Current: st.set.Current.ID},
		Version:     st.set.Version,
		LastRefresh: s.lastRefresh.UTC(),

		RefreshIntervalSeconds: k.cfg.interval.Seconds(),
	}
	if p := st.set.Previous; p != nil && !p.Expired(k.cfg.now()) {
		h.KeyIDs.Previous = p.ID
	}
	if st.set.Next != nil {
		h.KeyIDs.Next = st.set.Next.ID
	}
	if s.err != nil {
		h.Status = "degraded"
		h.LastError = s.err.Error()
	}
	return h
}

// HealthHandler returns a handler that serves [Keyring.Health] as JSON to
// GET and HEAD requests, always with status 200 while the keyring holds a
// set (a failed refresh is reported as "degraded", not as an outage,
// because the last good keys still work):
//
//	{"status":"ok","key_ids":{"current":"6ea95d6bde2ace20","previous":"a5c56e05f09bd9f3","next":""},
//	 "version":"7","last_refresh":"2026-11-25T23:32:13.5Z","last_error":"","refresh_interval_seconds":30}
//
// The report holds key ids only; it is safe to expose to monitoring.
func (k *Keyring) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.Marshal(k.Health())
		if err != nil {
			http.Error(w, "encode health", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(append(body, '\n'))
		}
	})
}
