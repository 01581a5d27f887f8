package manifest

import "strings"

// ImageShell tells whether an image holds a shell (and a sleep binary),
// from a maintained table of images known to have none. Known is false for
// an image the table does not cover: such an image is not assumed to lack
// a shell.
type ImageShell struct {
	HasShell bool   `json:"hasShell"`
	Known    bool   `json:"known"`
	Why      string `json:"why,omitempty"`
}

// shellless lists the image families built without a shell. Each entry is
// a repository prefix and the tags (or tag suffixes) that add one.
var shellless = []struct {
	prefix string // repository prefix (registry/path/)
	exact  bool   // prefix is the whole repository
	why    string
	// debugTag reports whether a tag selects the variant with a shell.
	debugTag func(tag string) bool
}{
	{"gcr.io/distroless/", false, "distroless images have no shell (only their :debug tags add busybox)", hasDebug},
	{"mcr.microsoft.com/cbl-mariner/distroless/", false, "Microsoft distroless images have no shell (only -debug tags add one)", hasDebug},
	{"mcr.microsoft.com/azurelinux/distroless/", false, "Microsoft distroless images have no shell (only -debug tags add one)", hasDebug},
	{"cgr.dev/", false, "Chainguard images have no shell (only their -dev tags add one)", chainguardDev},
	{"chainguard/", false, "Chainguard images have no shell (only their -dev tags add one)", chainguardDev},
	{"docker.io/chainguard/", false, "Chainguard images have no shell (only their -dev tags add one)", chainguardDev},
	{"scratch", true, "scratch is empty: no shell, no sleep", never},
	{"ko://", false, "ko builds on cgr.dev/chainguard/static by default: no shell", never},
	{"ko.local/", false, "ko builds on cgr.dev/chainguard/static by default: no shell", never},
	{"registry.k8s.io/pause", true, "the pause image holds only its own binary", never},
}

func hasDebug(tag string) bool      { return strings.Contains(tag, "debug") }
func chainguardDev(tag string) bool { return tag == "dev" || strings.HasSuffix(tag, "-dev") }
func never(string) bool             { return false }

// ImageShellOf looks an image reference up in the table of images known
// to have no shell.
func ImageShellOf(image string) ImageShell {
	ref := strings.TrimSpace(image)
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i] // a digest pins the tag's content; the tag (if any) still names the variant
	}
	repo, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i >= 0 && !strings.Contains(ref[i:], "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	for _, e := range shellless {
		match := strings.HasPrefix(repo, e.prefix) || strings.HasPrefix(ref, e.prefix)
		if e.exact {
			match = repo == e.prefix || repo == "docker.io/library/"+e.prefix
		}
		if !match {
			continue
		}
		if e.debugTag(tag) {
			return ImageShell{HasShell: true, Known: true, Why: "the " + tag + " tag adds a shell"}
		}
		return ImageShell{HasShell: false, Known: true, Why: e.why}
	}
	return ImageShell{HasShell: true, Known: false}
}
