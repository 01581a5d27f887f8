package kubelet

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Image says how a container image runs in the lab: its entrypoint and
// default arguments, and the files it holds (path in the image -> path on
// this machine). Only those files can be executed, so an exec hook that
// calls /bin/sh in a shell-less image fails as it does on a real node.
type Image struct {
	// Match is a path.Match pattern on the image reference without tag or
	// digest: with a slash it matches the whole name
	// ("docker.io/library/busybox"), without one the last path element
	// ("zerodrop" matches ghcr.io/acme/zerodrop:v1 and zerodrop:dev).
	Match      string            `json:"match"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Files      map[string]string `json:"files"`
	// ScaleDurations multiplies by the lab's time scale the durations the
	// zerodrop binary takes (shutdown delay and timeout flags and env vars,
	// the sleep command), so an app's delays follow the lab's clock.
	ScaleDurations bool `json:"scaleDurations,omitempty"`
}

// ErrImagePull means no image of the lab config matches the reference.
var ErrImagePull = errors.New("image not available in the lab")

// ErrNotFound means the executable is not a file of the image.
var ErrNotFound = errors.New("executable file not found in $PATH")

// DefaultImages maps the project's image (any reference whose last path
// element is "zerodrop") to the running binary.
func DefaultImages(binary string) []Image {
	return []Image{{
		Match:          "zerodrop",
		Entrypoint:     []string{"/zerodrop"},
		Cmd:            []string{"serve"},
		Files:          map[string]string{"/zerodrop": binary, "/usr/local/bin/zerodrop": binary},
		ScaleDurations: true,
	}}
}

// ResolveImage finds the image for ref.
func ResolveImage(images []Image, ref string) (*Image, error) {
	name := imageName(ref)
	for i := range images {
		subject := name
		if !strings.Contains(images[i].Match, "/") {
			subject = path.Base(name)
		}
		if ok, _ := path.Match(images[i].Match, subject); ok {
			return &images[i], nil
		}
	}
	return nil, fmt.Errorf("%w: %q (known: %s)", ErrImagePull, ref, knownImages(images))
}

func knownImages(images []Image) string {
	var m []string
	for _, im := range images {
		m = append(m, im.Match)
	}
	return strings.Join(m, ", ")
}

// imageName strips the tag and digest from an image reference.
func imageName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// Lookup resolves an executable the way a container runtime does: an
// absolute path must be a file of the image; a bare name is looked up in
// the usual PATH directories.
func (im *Image) Lookup(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		if host, ok := im.Files[path.Clean(name)]; ok {
			return host, nil
		}
		return "", fmt.Errorf("exec: %q: %w", name, ErrNotFound)
	}
	if strings.Contains(name, "/") {
		return "", fmt.Errorf("exec: %q: relative paths are not supported in the lab: %w", name, ErrNotFound)
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/"} {
		if host, ok := im.Files[path.Join(dir, name)]; ok {
			return host, nil
		}
	}
	return "", fmt.Errorf("exec: %q: %w", name, ErrNotFound)
}

// Argv builds the process's argument vector from the container's command
// and args, as Kubernetes combines them with the image's entrypoint and cmd.
func (im *Image) Argv(command, args []string) []string {
	switch {
	case len(command) > 0:
		return append(append([]string(nil), command...), args...)
	case len(args) > 0:
		return append(append([]string(nil), im.Entrypoint...), args...)
	default:
		return append(append([]string(nil), im.Entrypoint...), im.Cmd...)
	}
}

// durationFlags are the zerodrop flags and env vars whose values the lab
// scales.
var durationFlags = map[string]bool{
	"--shutdown-delay": true, "--shutdown-timeout": true, "--idle-timeout": true,
}

var durationEnv = map[string]bool{
	"ZERODROP_SHUTDOWN_DELAY": true, "ZERODROP_SHUTDOWN_TIMEOUT": true, "ZERODROP_IDLE_TIMEOUT": true,
}

// ScaleArgv multiplies the durations of the zerodrop command line argv
// (argv[0] is the program) by scale.
func ScaleArgv(argv []string, scale float64) []string {
	if scale == 1 || scale <= 0 {
		return argv
	}
	out := append([]string(nil), argv...)
	for i := 1; i < len(out); i++ {
		a := out[i]
		if k, v, ok := strings.Cut(a, "="); ok && durationFlags[k] {
			out[i] = k + "=" + scaleDuration(v, scale)
			continue
		}
		if durationFlags[a] && i+1 < len(out) {
			out[i+1] = scaleDuration(out[i+1], scale)
			i++
		}
	}
	// zerodrop sleep D
	if len(out) >= 3 && path.Base(out[0]) == "zerodrop" && out[1] == "sleep" {
		out[2] = scaleDuration(out[2], scale)
	}
	return out
}

// ScaleEnv scales a zerodrop duration env var's value.
func ScaleEnv(name, value string, scale float64) string {
	if !durationEnv[name] || scale == 1 || scale <= 0 {
		return value
	}
	return scaleDuration(value, scale)
}

func scaleDuration(v string, scale float64) string {
	d, err := time.ParseDuration(v)
	if err != nil {
		n, err2 := strconv.ParseFloat(v, 64)
		if err2 != nil {
			return v // not a duration: the app will say so
		}
		d = time.Duration(n * float64(time.Second))
	}
	return time.Duration(float64(d) * scale).String()
}
