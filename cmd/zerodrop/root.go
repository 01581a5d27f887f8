package main

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"
)

// subcommands holds the constructors of every subcommand. Each command file
// registers its own in an init function, so adding a command touches only
// its own file.
var subcommands []func() *cobra.Command

func register(newCmd func() *cobra.Command) { subcommands = append(subcommands, newCmd) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "zerodrop",
		Short: "Terminate pods behind a load balancer without dropping a request, and prove it",
		Long: `zerodrop gets the termination timing chain right (app, kubelet, endpoints,
load-balancer controller, ALB) and proves it with real processes and sockets.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// A flag the command does not know or cannot parse is a usage error.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withExitCode(2, err) })
	for _, newCmd := range subcommands {
		root.AddCommand(newCmd())
	}
	return root
}

// exitError carries a specific process exit code (for example 1 for a
// failed gate, 2 for bad usage) through cobra back to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withExitCode wraps err so that the process exits with code.
func withExitCode(code int, err error) error { return &exitError{code: code, err: err} }

// exitCodeOf returns the exit code err asks for. Cobra's own argument
// errors (unknown command, wrong number of arguments) are usage errors: 2.
func exitCodeOf(err error) (int, bool) {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code, true
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown command") || strings.Contains(msg, "arg(s), received") {
		return 2, true
	}
	return 0, false
}
