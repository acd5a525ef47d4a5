package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"
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
