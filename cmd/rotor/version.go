package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
)

// version is the release stamped by the release build
// (-ldflags "-X main.version=v1.2.3"); empty in other builds, which report
// the module version the Go toolchain recorded instead.
var version string

// buildVersion describes this binary from its build information.
func buildVersion() api.Version {
	v := api.Version{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v.Version == "" {
			v.Version = "(unknown)"
		}
		return v
	}
	v.Module = bi.Main.Path
	if v.Version == "" {
		v.Version = bi.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				t = t.UTC()
				v.RevisionTime = &t
			}
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// versionLine is the one-line form `rotor --version` prints.
func versionLine(v api.Version) string {
	s := "rotor " + v.Version
	if v.Revision != "" {
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if v.Modified {
			rev += "+dirty"
		}
		s += " (" + rev + ")"
	}
	return s + " " + v.GoVersion + " " + v.Platform
}

func newVersionCmd(g *globals) *cobra.Command {
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "version [-o text|json]",
		Short: "Print rotor's version, VCS revision and Go version",
		Long: `Version prints the release this binary was built as (stamped by the release
build; otherwise the module version the Go toolchain recorded), the VCS
revision and its time, whether the work tree had uncommitted changes, the
Go version and the platform. It reads no config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			v := buildVersion()
			return out.print(cmd.OutOrStdout(), v, func(w io.Writer) error {
				fmt.Fprintln(w, versionLine(v))
				fmt.Fprintf(w, "module:   %s\n", dash(v.Module))
				fmt.Fprintf(w, "revision: %s", dash(v.Revision))
				if v.Modified {
					fmt.Fprint(w, " (modified)")
				}
				fmt.Fprintln(w)
				if v.RevisionTime != nil {
					fmt.Fprintf(w, "time:     %s\n", v.RevisionTime.Format(time.RFC3339))
				}
				fmt.Fprintf(w, "go:       %s\n", v.GoVersion)
				fmt.Fprintf(w, "platform: %s\n", v.Platform)
				return nil
			})
		},
	}
	out.register(cmd, "text")
	return cmd
}
