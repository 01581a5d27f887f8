// Command zerodrop makes HTTP services on Kubernetes behind a load balancer
// terminate without dropping requests, and proves it.
//
// The command is thin: each subcommand parses its flags and calls a package.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run())
}

func run() int {
	root := newRootCmd()
	// Subcommands that manage their own signals (serve, lab) ignore this
	// context's cancellation on purpose; the rest stop on SIGINT/SIGTERM.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		if code, ok := exitCodeOf(err); ok {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "zerodrop:", msg)
			}
			return code
		}
		fmt.Fprintln(os.Stderr, "zerodrop:", err)
		return 1
	}
	return 0
}
