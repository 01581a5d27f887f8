//go:build !nolab

package integration

import (
	"encoding/json"
	"os/exec"
)

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
