package api

// Doctor is the document of `rotor doctor -o json`: the preflight's
// checks, in the order they ran.
type Doctor struct {
	// OK is true when no check found a problem.
	OK bool `json:"ok"`
	// Problems counts the checks whose status is "problem".
	Problems int `json:"problems"`
	// Checks are the checks, one per line of the text form.
	Checks []DoctorCheck `json:"checks"`
}

// The statuses of a [DoctorCheck].
const (
	DoctorOK      = "ok"
	DoctorProblem = "problem"
	// DoctorSkipped is a check that could not run because an earlier one
	// failed (no provider check without a readable store) or that does
	// not apply (no clock to compare with on the file store).
	DoctorSkipped = "skipped"
)

// DoctorCheck is one check of `rotor doctor`.
type DoctorCheck struct {
	// Check names what was checked: config, salt, identity, store_dir,
	// store, clock, schedule, provider, hook.
	Check string `json:"check"`
	// Subject is what the check is about: a secret's name, a file, a
	// hook's command; "" for the config as a whole.
	Subject string `json:"subject"`
	// Status is "ok", "problem" or "skipped".
	Status string `json:"status"`
	// Detail says what was found, never a value.
	Detail string `json:"detail"`
	// Hint says how to fix a problem; "" otherwise.
	Hint string `json:"hint"`
}
