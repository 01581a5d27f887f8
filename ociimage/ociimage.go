package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The fixed parts of the image.
const (
	// BinaryPath is where the binary lives in the image; preStop hooks
	// call it ("/zerodrop sleep 20s").
	BinaryPath = "/zerodrop"
	// User is the numeric user and group the container runs as
	// (distroless' nonroot).
	User = "65532:65532"
	// Port is the port the image's default command listens on.
	Port = 8000
	// DefaultSourceURL is the org.opencontainers.image.source label when
	// Options.SourceURL is empty.
	DefaultSourceURL = "https://zerodrop.dev/zerodrop"
	// Module is the Go module the binary is built from.
	Module = "zerodrop.dev/zerodrop"
)

// Platform is one operating system and architecture of the image.
type Platform struct {
	OS   string
	Arch string
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// DefaultPlatforms are linux/amd64 and linux/arm64 (Graviton, as the seed's
// t4g nodes).
func DefaultPlatforms() []Platform {
	return []Platform{{"linux", "amd64"}, {"linux", "arm64"}}
}

// supported lists the architectures the image can be built for: a static
// Go binary on linux needs nothing else from the platform.
var supported = []string{"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"}

// ParsePlatforms reads a comma-separated list such as
// "linux/amd64,linux/arm64". Duplicates and unknown platforms are errors.
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		os, arch, ok := strings.Cut(f, "/")
		if !ok || os == "" || arch == "" {
			return nil, fmt.Errorf("platform %q: want OS/ARCH such as linux/amd64", f)
		}
		if os != "linux" {
			return nil, fmt.Errorf("platform %q: only linux images are built", f)
		}
		if !slices.Contains(supported, arch) {
			return nil, fmt.Errorf("platform %q: unknown architecture %q (want one of %s)", f, arch, strings.Join(supported, ", "))
		}
		p := Platform{os, arch}
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("platform %q given twice", f)
		}
		out = append(out, p)
	}
	return out, nil
}

// Options say what to build.
type Options struct {
	// Source is the root of the zerodrop module checkout; "" is ".".
	Source string
	// Platforms to build; nil means DefaultPlatforms.
	Platforms []Platform
	// Version is stamped into the binary (main.version) and the
	// org.opencontainers.image.version label; "" is "dev".
	Version string
	// Revision, when set, is the org.opencontainers.image.revision label.
	Revision string
	// SourceURL is the org.opencontainers.image.source label; "" is
	// DefaultSourceURL.
	SourceURL string
	// Binaries, when set for a platform ("linux/amd64"), is a binary built
	// already: it is used as is instead of compiling one.
	Binaries map[string]string
	// Created is the creation time in the image config; zero is the Unix
	// epoch, so that equal binaries give equal digests.
	Created time.Time
	// WorkDir holds the compiled binaries; "" is a temporary directory
	// removed when Build returns.
	WorkDir string
	// Log, when set, receives the compiler's output and progress lines.
	Log io.Writer
}

// Build compiles the binaries that Options.Binaries does not give and
// assembles the multi-platform image.
func Build(ctx context.Context, opts Options) (v1.ImageIndex, error) {
	platforms := opts.Platforms
	if len(platforms) == 0 {
		platforms = DefaultPlatforms()
	}
	work := opts.WorkDir
	if work == "" {
		dir, err := os.MkdirTemp("", "zerodrop-image-")
		if err != nil {
			return nil, fmt.Errorf("building image: %w", err)
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	bins := make(map[Platform][]byte, len(platforms))
	for _, p := range platforms {
		path := opts.Binaries[p.String()]
		if path == "" {
			path = filepath.Join(work, "zerodrop-"+p.OS+"-"+p.Arch)
			if err := Compile(ctx, opts.Source, p, opts.Version, path, opts.Log); err != nil {
				return nil, err
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("building image for %s: reading the binary: %w", p, err)
		}
		bins[p] = b
	}
	return Assemble(platforms, bins, opts)
}

// Compile builds the slim zerodrop binary for p from the module at source
// into out: CGO_ENABLED=0, -tags nolab, -trimpath, -ldflags "-s -w".
func Compile(ctx context.Context, source string, p Platform, version, out string, log io.Writer) error {
	if source == "" {
		source = "."
	}
	if err := checkModule(source); err != nil {
		return err
	}
	if version == "" {
		version = "dev"
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("compiling for %s: %w", p, err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "nolab", "-trimpath",
		"-ldflags", "-s -w -X main.version="+version, "-o", abs, "./cmd/zerodrop")
	cmd.Dir = source
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if log != nil {
		fmt.Fprintf(log, "image: go build %s\n", p)
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&msg, log), io.MultiWriter(&msg, log)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("compiling for %s in %s: %w\n%s", p, source, err, strings.TrimSpace(msg.String()))
	}
	return nil
}

// checkModule makes sure dir is the root of the zerodrop module, so that a
// mistaken --source names itself instead of failing inside go build.
func checkModule(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return fmt.Errorf("source %s: not the root of the %s module: %w", dir, Module, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			if strings.Trim(f[1], `"`) == Module {
				return nil
			}
			return fmt.Errorf("source %s: go.mod is module %s, want %s", dir, f[1], Module)
		}
	}
	return fmt.Errorf("source %s: go.mod names no module", dir)
}

// Labels returns the OCI labels of the image config (also set as
// annotations on the index).
func Labels(opts Options) map[string]string {
	version, src := opts.Version, opts.SourceURL
	if version == "" {
		version = "dev"
	}
	if src == "" {
		src = DefaultSourceURL
	}
	l := map[string]string{
		"org.opencontainers.image.source":      src,
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.title":       "zerodrop",
		"org.opencontainers.image.description": "zerodrop serve, load, sleep: pods behind a load balancer that drop no request",
	}
	if opts.Revision != "" {
		l["org.opencontainers.image.revision"] = opts.Revision
	}
	return l
}

// Assemble makes the image index from one binary per platform (the ELF
// file's bytes); platforms gives their order in the index.
func Assemble(platforms []Platform, binaries map[Platform][]byte, opts Options) (v1.ImageIndex, error) {
	if len(platforms) == 0 {
		return nil, errors.New("assembling image: no platform")
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	base, err := baseLayer(created)
	if err != nil {
		return nil, err
	}
	labels := Labels(opts)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		bin, ok := binaries[p]
		if !ok || len(bin) == 0 {
			return nil, fmt.Errorf("assembling image: no binary for %s", p)
		}
		img, err := platformImage(p, base, bin, created, labels)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
	}
	idx = mutate.AppendManifests(idx, adds...)
	return mutate.Annotations(idx, labels).(v1.ImageIndex), nil
}

func platformImage(p Platform, base v1.Layer, bin []byte, created time.Time, labels map[string]string) (v1.Image, error) {
	binLayer, err := layer(created, []entry{{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, data: bin}})
	if err != nil {
		return nil, fmt.Errorf("assembling image for %s: %w", p, err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "zerodrop image build: nonroot user, /tmp", Comment: "base"}},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "zerodrop image build: " + BinaryPath + " for " + p.String()}},
	)
	if err != nil {
		return nil, fmt.Errorf("assembling image for %s: %w", p, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("assembling image for %s: %w", p, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Arch
	cf.Created = v1.Time{Time: created}
	cf.Config.Entrypoint = []string{BinaryPath}
	cf.Config.Cmd = []string{"serve"}
	cf.Config.User = User
	cf.Config.WorkingDir = "/tmp"
	cf.Config.Env = []string{
		fmt.Sprintf("ZERODROP_ADDR=:%d", Port),
		"ZERODROP_DB=sqlite:/tmp/zerodrop-orders.db",
	}
	cf.Config.ExposedPorts = map[string]struct{}{fmt.Sprintf("%d/tcp", Port): {}}
	cf.Config.Labels = labels
	cf.Config.StopSignal = "SIGTERM"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("assembling image for %s: %w", p, err)
	}
	return img, nil
}

// baseLayer holds the nonroot user, its group and a world-writable /tmp.
func baseLayer(created time.Time) (v1.Layer, error) {
	return layer(created, []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true, uid: 65532},
		{name: "tmp/", mode: 0o1777, dir: true},
	})
}

type entry struct {
	name string
	mode int64
	dir  bool
	uid  int
	data []byte
}

// layer writes entries into an uncompressed tar with fixed timestamps and
// numeric ownership, and makes an OCI layer (gzip) of it.
func layer(created time.Time, entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: created, Uid: e.uid, Gid: e.uid, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing layer entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("writing layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("making layer: %w", err)
	}
	return l, nil
}

// RefName is the org.opencontainers.image.ref.name of the index in the
// layout's index.json when WriteLayout gets no name.
const RefName = "zerodrop"

// WriteLayout writes idx as an OCI image layout in dir (created if needed,
// which must be empty or absent). index.json holds one descriptor, the
// multi-platform index, named ref (RefName when "").
func WriteLayout(dir string, idx v1.ImageIndex, ref string) error {
	if ref == "" {
		ref = RefName
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("writing image layout: %s is not empty", dir)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing image layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		return fmt.Errorf("writing image layout %s: %w", dir, err)
	}
	return nil
}

// WriteArchive writes idx as an OCI archive: the image layout of
// WriteLayout in one tar file (podman load, skopeo copy oci-archive:).
func WriteArchive(file string, idx v1.ImageIndex, ref string) (err error) {
	tmp, err := os.MkdirTemp(filepath.Dir(file), ".zerodrop-image-")
	if err != nil {
		return fmt.Errorf("writing image archive: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := WriteLayout(tmp, idx, ref); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("writing image archive: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing image archive %s: %w", file, cerr)
		}
	}()
	if err := tarDir(f, tmp); err != nil {
		return fmt.Errorf("writing image archive %s: %w", file, err)
	}
	return nil
}

// tarDir writes the files under dir into w, in lexical order, with paths
// relative to dir.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname = time.Unix(0, 0), 0, 0, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// Write writes idx to out: an OCI archive when out ends in ".tar", an OCI
// image layout directory otherwise.
func Write(out string, idx v1.ImageIndex, ref string) error {
	if strings.HasSuffix(out, ".tar") {
		return WriteArchive(out, idx, ref)
	}
	return WriteLayout(out, idx, ref)
}
