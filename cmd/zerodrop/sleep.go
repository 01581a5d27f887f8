package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newSleepCmd) }

func newSleepCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sleep DURATION",
		Short: "Sleep for DURATION and exit 0 (preStop helper for images without a shell)",
		Long: `Sleep for DURATION, then exit 0. Use it as a preStop exec hook in images that
have no shell and no sleep binary (distroless, scratch, chainguard):

  lifecycle:
    preStop:
      exec:
        command: ["/zerodrop", "sleep", "20s"]

DURATION is Go syntax (20s, 1m30s) or a whole number of seconds (20).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := parseSleepDuration(args[0])
			if err != nil {
				return withExitCode(2, err)
			}
			// The kubelet ends the hook itself when the grace period runs
			// out, so a plain sleep is the whole job; a signal ends it early.
			select {
			case <-time.After(d):
			case <-cmd.Context().Done():
			}
			return nil
		},
	}
}

func parseSleepDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("sleep: invalid duration %q: want Go syntax such as 20s or 1m30s, or whole seconds such as 20", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("sleep: invalid duration %q: must not be negative", s)
	}
	return d, nil
}
