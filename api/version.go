package api

import "time"

// Version is the document of `rotor version -o json`: which build of rotor
// is running.
type Version struct {
	// Version is the release (v1.2.3) stamped at build time, else the
	// module version the Go toolchain recorded: a tag, a pseudo-version
	// derived from the VCS, or "(devel)".
	Version string `json:"version"`
	// Module is the main module's path.
	Module string `json:"module"`
	// Revision is the VCS commit the binary was built from, "" when the
	// build recorded none (go install from the module proxy, -buildvcs=false).
	Revision string `json:"revision"`
	// RevisionTime is the commit's time; null when unknown.
	RevisionTime *time.Time `json:"revision_time"`
	// Modified reports uncommitted changes in the work tree at build time.
	Modified bool `json:"modified"`
	// GoVersion is the Go toolchain that built the binary (go1.26.8).
	GoVersion string `json:"go_version"`
	// Platform is GOOS/GOARCH of the binary (linux/amd64).
	Platform string `json:"platform"`
}
