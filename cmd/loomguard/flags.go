package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// commandHelp is the --help text of a command around its flag list.
type commandHelp struct {
	name        string // "check"
	usage       string // the synopsis after "loomguard "
	description string
	exitCodes   string
	examples    string
}

// flags is a command's flag set with its help text.
type flags struct {
	*pflag.FlagSet
	help     commandHelp
	showHelp bool
}

// newFlags returns a GNU-style flag set that reports errors instead of exiting.
func newFlags(h commandHelp, stderr io.Writer) *flags {
	fs := pflag.NewFlagSet("loomguard "+h.name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	f := &flags{FlagSet: fs, help: h}
	fs.Usage = func() {} // parse reports errors itself; --help is a flag
	return f
}

// parse parses args. When done is true the command must return code: --help was
// printed (0) or the command line is wrong (2, reported on stderr).
func (f *flags) parse(args []string, stdout, stderr io.Writer) (code int, done bool) {
	f.BoolVarP(&f.showHelp, "help", "h", false, "show this help")
	if err := f.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			f.writeHelp(stdout)
			return exitOK, true
		}
		return f.usageError(stderr, err.Error()), true
	}
	if f.showHelp {
		f.writeHelp(stdout)
		return exitOK, true
	}
	if f.NArg() > 0 {
		return f.usageError(stderr, fmt.Sprintf("unexpected argument %q", f.Arg(0))), true
	}
	return exitOK, false
}

// usageError reports a wrong command line and returns exitError.
func (f *flags) usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "loomguard %s: %s\nRun 'loomguard %s --help' for usage.\n", f.help.name, msg, f.help.name)
	return exitError
}

func (f *flags) writeHelp(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n  loomguard %s\n\n", f.help.usage)
	b.WriteString(strings.TrimSpace(f.help.description))
	b.WriteString("\n\nFlags:\n")
	b.WriteString(f.FlagUsages())
	if f.help.exitCodes != "" {
		b.WriteString("\nExit codes:\n")
		b.WriteString(strings.Trim(f.help.exitCodes, "\n"))
		b.WriteString("\n")
	}
	if f.help.examples != "" {
		b.WriteString("\nExamples:\n")
		b.WriteString(strings.Trim(f.help.examples, "\n"))
		b.WriteString("\n")
	}
	fmt.Fprint(w, b.String())
}

// choice is a string flag restricted to a fixed set of values.
type choice struct {
	value   string
	allowed []string
}

func newChoice(def string, allowed ...string) *choice {
	return &choice{value: def, allowed: allowed}
}

func (c *choice) String() string { return c.value }

func (c *choice) Set(s string) error {
	if !slices.Contains(c.allowed, s) {
		return fmt.Errorf("must be one of %s", strings.Join(c.allowed, ", "))
	}
	c.value = s
	return nil
}

func (c *choice) Type() string { return "format" }
