package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
)

// helpCmd is `authbench help [COMMAND...]`.
type helpCmd struct {
	Command []string `arg:"" optional:"" placeholder:"COMMAND" help:"The command (and subcommand) to explain."`
}

func (h *helpCmd) Run(kctx *kong.Context) error {
	t, err := kong.Trace(kctx.Kong, h.Command)
	if err != nil {
		return err
	}
	if t.Error != nil || (len(h.Command) > 0 && t.Selected() == nil) {
		return usageError{fmt.Errorf("unknown command %q", strings.Join(h.Command, " "))}
	}
	return t.PrintUsage(false)
}

// exitCodesHelp ends the help of authbench itself.
const exitCodesHelp = `Exit status: 0 all good; 1 checks failed, targets missed or the server refused;
2 usage error; 3 device or server unreachable; 130 interrupted.`

// helpPrinter is kong's help, followed by the flags of every subcommand
// when the command has some (so that "authbench help identity" shows the
// flags of "identity create"), and by the exit statuses for authbench
// itself.
func helpPrinter(o kong.HelpOptions, ctx *kong.Context) error {
	if err := kong.DefaultHelpPrinter(o, ctx); err != nil {
		return err
	}
	sel := ctx.Selected()
	if sel == nil {
		fmt.Fprintln(ctx.Stdout)
		fmt.Fprintln(ctx.Stdout, exitCodesHelp)
		return nil
	}
	for _, leaf := range sel.Leaves(true) {
		t, err := kong.Trace(ctx.Kong, strings.Fields(leaf.Path()))
		if err != nil || t.Error != nil {
			continue
		}
		t.Stdout = ctx.Stdout
		fmt.Fprintln(ctx.Stdout)
		fmt.Fprintln(ctx.Stdout, strings.Repeat("─", 20))
		if err := kong.DefaultHelpPrinter(o, t); err != nil {
			return err
		}
	}
	return nil
}

// helpValue is the help text of a flag: its own words, then the values
// it accepts, its default and its environment variable, each said once.
func helpValue(v *kong.Value) string {
	h := strings.TrimSuffix(v.Help, ".")
	var extra []string
	if v.Enum != "" && !strings.Contains(v.OrigHelp, "${enum}") {
		extra = append(extra, "one of: "+strings.Join(v.EnumSlice(), ", "))
	}
	if v.HasDefault && v.Default != "" && !strings.Contains(v.OrigHelp, "${default}") {
		extra = append(extra, "default: "+v.Default)
	}
	if len(v.Tag.Envs) > 0 {
		extra = append(extra, "$"+strings.Join(v.Tag.Envs, ", $"))
	}
	if len(extra) > 0 {
		h += " (" + strings.Join(extra, "; ") + ")"
	}
	if h != "" {
		h += "."
	}
	return h
}

// strictJSON loads a configuration file (--config) for kong: a JSON object
// whose keys are the long names of the command's flags ("addr", "db",
// "log-level"). A key that names no flag is an error, not silently
// ignored. A flag given on the command line, or through its environment
// variable, wins over the file.
func strictJSON(r io.Reader) (kong.Resolver, error) {
	var values map[string]any
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(&values); err != nil {
		return nil, fmt.Errorf("the configuration file is not a JSON object: %w", err)
	}
	return &configResolver{values: values}, nil
}

type configResolver struct{ values map[string]any }

func (c *configResolver) Validate(app *kong.Application) error { return nil }

func (c *configResolver) Resolve(kctx *kong.Context, parent *kong.Path, flag *kong.Flag) (any, error) {
	if err := c.checkKeys(kctx); err != nil {
		return nil, err
	}
	for _, env := range flag.Envs {
		if envSet(env) {
			return nil, nil
		}
	}
	v, ok := c.values[flag.Name]
	if !ok {
		return nil, nil
	}
	switch v := v.(type) {
	case json.Number:
		return v.String(), nil
	case bool:
		return v, nil
	case string:
		return v, nil
	}
	return nil, fmt.Errorf("configuration file: %q: want a string, number or boolean", flag.Name)
}

// checkKeys fails on a key that names none of the selected command's
// flags.
func (c *configResolver) checkKeys(kctx *kong.Context) error {
	known := map[string]bool{}
	if sel := kctx.Selected(); sel != nil {
		for _, group := range sel.AllFlags(true) {
			for _, f := range group {
				known[f.Name] = true
			}
		}
	}
	var unknown []string
	for k := range c.values {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return usageError{fmt.Errorf("configuration file: no flag named %s", strings.Join(unknown, ", "))}
	}
	return nil
}
