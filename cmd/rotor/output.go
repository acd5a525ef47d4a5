package main

import (
	"encoding/json"
	"errors"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/internal/errclass"
	"github.com/rotor-dev/rotor/provider"
)

// outputFlag is the --output (-o) flag every command has: a form for people
// (table or text) or json, one document of package api on stdout.
type outputFlag struct {
	format string
	human  string
}

// register adds the flag to cmd, with human as the default format.
func (o *outputFlag) register(cmd *cobra.Command, human string) {
	o.human = human
	cmd.Flags().StringVarP(&o.format, "output", "o", human, "output format: "+human+" or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{human, "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// check refuses an unknown format before the command does anything.
func (o *outputFlag) check(cmd *cobra.Command) error {
	if o.format != o.human && o.format != "json" {
		return usagef("%s: --output must be %s or json", cmd.Name(), o.human)
	}
	return nil
}

// json reports whether the JSON document was asked for.
func (o *outputFlag) json() bool { return o.format == "json" }

// print writes doc as indented JSON, or calls human for the other format.
func (o *outputFlag) print(w io.Writer, doc any, human func(io.Writer) error) error {
	if o.json() {
		return writeJSON(w, doc)
	}
	return human(w)
}

// writeJSON writes doc as one indented JSON document and a newline.
func writeJSON(w io.Writer, doc any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// wantsJSON reports whether the command that ran (or failed to parse its
// flags) was asked for -o json.
func wantsJSON(cmd *cobra.Command, args []string) bool {
	if cmd != nil {
		if f := cmd.Flags().Lookup("output"); f != nil && f.Changed {
			return f.Value.String() == "json"
		}
	}
	// The flags were not parsed (a usage error): read the words.
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "-ojson", a == "-o=json", a == "--output=json":
			return true
		case (a == "-o" || a == "--output") && i+1 < len(args):
			return args[i+1] == "json"
		}
	}
	return false
}

// writeErrorJSON writes the error document of err (api.ErrorBody) on one
// line, so that it is the last line of stderr whatever warnings came
// before it.
func writeErrorJSON(w io.Writer, err error, exit int) {
	d := errorDetail(err)
	d.Code, d.ExitCode = errorCode(err, exit), exit
	b, jerr := json.Marshal(api.ErrorBody{Error: *d})
	if jerr != nil {
		b = []byte(`{"error":{"code":"error","message":"cannot encode the error","exit_code":1}}`)
	}
	w.Write(append(b, '\n'))
}

// errorCode returns the stable code (api.Code…) of a failure that exits
// with exit.
func errorCode(err error, exit int) string {
	switch exit {
	case exitUsage:
		return api.CodeUsage
	case exitDoctor:
		return api.CodeDoctorProblems
	}
	if c := errclass.Of(err).Code(); c != "" {
		return c
	}
	return api.CodeError
}

// errorDetail is the content of err's error document, also the error of
// one secret in a document that reports several (rotate --due, revoke
// --expired): nil for no error.
func errorDetail(err error) *api.ErrorDetail {
	if err == nil {
		return nil
	}
	exit := exitCode(err)
	d := &api.ErrorDetail{Code: errorCode(err, exit), Message: err.Error(), Hint: hint(err), ExitCode: exit}
	var are *provider.ActionRequiredError
	if errors.As(err, &are) {
		d.Steps = slices.Clone(are.Steps)
		d.Hint = ""
	}
	return d
}
