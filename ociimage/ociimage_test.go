package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestParsePlatforms(t *testing.T) {
	got, err := ParsePlatforms("linux/amd64, linux/arm64")
	if err != nil || !slices.Equal(got, DefaultPlatforms()) {
		t.Fatalf("ParsePlatforms = %v, %v; want %v", got, err, DefaultPlatforms())
	}
	for _, bad := range []string{"", "amd64", "linux/", "/amd64", "darwin/arm64", "linux/sparc", "linux/amd64,linux/amd64", "linux/amd64,"} {
		if p, err := ParsePlatforms(bad); err == nil {
			t.Errorf("ParsePlatforms(%q) = %v, want an error", bad, p)
		}
	}
}

func TestCompileRejectsOtherModule(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Compile(context.Background(), dir, Platform{"linux", "amd64"}, "", filepath.Join(dir, "out"), nil)
	if err == nil || !strings.Contains(err.Error(), "example.com/other") {
		t.Fatalf("Compile in another module: err = %v, want one naming the module", err)
	}
	if err := Compile(context.Background(), t.TempDir(), Platform{"linux", "amd64"}, "", filepath.Join(dir, "out"), nil); err == nil {
		t.Fatal("Compile without go.mod: no error")
	}
}

func TestAssembleIsReproducibleAndNeedsEveryBinary(t *testing.T) {
	ps := DefaultPlatforms()
	bins := map[Platform][]byte{ps[0]: []byte("amd64 binary"), ps[1]: []byte("arm64 binary")}
	digest := func(o Options) v1.Hash {
		idx, err := Assemble(ps, bins, o)
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := digest(Options{Version: "v1"}), digest(Options{Version: "v1"})
	if a != b {
		t.Errorf("same binaries, two digests: %s and %s", a, b)
	}
	if c := digest(Options{Version: "v2"}); c == a {
		t.Errorf("another version label, same digest %s", c)
	}
	if _, err := Assemble(ps, map[Platform][]byte{ps[0]: []byte("x")}, Options{}); err == nil || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("Assemble without the arm64 binary: err = %v, want one naming linux/arm64", err)
	}
}

// built is the archive TestImage builds once, shared with the podman test.
type built struct {
	archive string
	layout  string
}

func buildOnce(t *testing.T) built {
	t.Helper()
	if testing.Short() {
		t.Skip("compiles zerodrop for two architectures (about 1 minute warm, 7 cold on 2 cores)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var log bytes.Buffer
	idx, err := Build(ctx, Options{Source: "..", Version: "v0.0.0-test", Revision: "abc123", Log: &log})
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	b := built{archive: filepath.Join(dir, "zerodrop.tar"), layout: filepath.Join(dir, "layout")}
	if err := Write(b.archive, idx, ""); err != nil {
		t.Fatal(err)
	}
	// Read the archive back the way a consumer does: untar the layout.
	if err := untar(b.archive, b.layout); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImage(t *testing.T) {
	b := buildOnce(t)
	t.Run("inspect", func(t *testing.T) { inspect(t, b.layout) })
	t.Run("podman", func(t *testing.T) { runPodman(t, b.archive) })
}

// inspect reads the OCI layout at dir and checks what the image promises.
func inspect(t *testing.T, dir string) {
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("reading the layout: %v", err)
	}
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Manifests) != 1 || rm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != RefName {
		t.Fatalf("index.json: %+v, want one descriptor named %q", rm.Manifests, RefName)
	}
	idx, err := root.ImageIndex(rm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("index media type %s, want %s", mt, types.OCIImageIndex)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	var archs []string
	for _, desc := range im.Manifests {
		if desc.Platform == nil || desc.Platform.OS != "linux" {
			t.Fatalf("descriptor %s has platform %v, want linux/…", desc.Digest, desc.Platform)
		}
		arch := desc.Platform.Architecture
		archs = append(archs, arch)
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if cf.Architecture != arch || cf.OS != "linux" {
			t.Errorf("%s: config platform %s/%s", arch, cf.OS, cf.Architecture)
		}
		if !slices.Equal(c.Entrypoint, []string{"/zerodrop"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
			t.Errorf("%s: entrypoint %q cmd %q, want [/zerodrop] [serve]", arch, c.Entrypoint, c.Cmd)
		}
		if c.User != "65532:65532" {
			t.Errorf("%s: user %q, want 65532:65532", arch, c.User)
		}
		if c.Labels["org.opencontainers.image.source"] != DefaultSourceURL || c.Labels["org.opencontainers.image.version"] != "v0.0.0-test" ||
			c.Labels["org.opencontainers.image.revision"] != "abc123" {
			t.Errorf("%s: labels %v", arch, c.Labels)
		}
		files := layerFiles(t, img)
		var names []string
		for name := range files {
			names = append(names, name)
		}
		slices.Sort(names)
		wantNames := []string{"etc/", "etc/group", "etc/passwd", "home/", "home/nonroot/", "tmp/", "zerodrop"}
		if !slices.Equal(names, wantNames) {
			t.Errorf("%s: files %q, want exactly %q", arch, names, wantNames)
		}
		for name := range files {
			if base := filepath.Base(name); base == "sh" || base == "bash" || base == "busybox" {
				t.Errorf("%s: the image has a shell: %s", arch, name)
			}
		}
		if !strings.Contains(string(files["etc/passwd"].data), "nonroot:x:65532:65532:") ||
			!strings.Contains(string(files["etc/group"].data), "nonroot:x:65532:") {
			t.Errorf("%s: no nonroot entry in /etc/passwd or /etc/group", arch)
		}
		bin := files["zerodrop"]
		if bin.mode&0o111 == 0 || bin.uid != 0 {
			t.Errorf("%s: /zerodrop mode %o uid %d, want executable and owned by root", arch, bin.mode, bin.uid)
		}
		f, err := elf.NewFile(bytes.NewReader(bin.data))
		if err != nil {
			t.Fatalf("%s: /zerodrop is not an ELF file: %v", arch, err)
		}
		if f.Machine != want[arch] {
			t.Errorf("%s: /zerodrop is for %v, want %v", arch, f.Machine, want[arch])
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: /zerodrop is dynamically linked (has an interpreter)", arch)
			}
		}
	}
	slices.Sort(archs)
	if !slices.Equal(archs, []string{"amd64", "arm64"}) {
		t.Errorf("architectures %v, want amd64 and arm64", archs)
	}
}

type file struct {
	mode int64
	uid  int
	data []byte
}

// layerFiles flattens the image's layers into path -> file.
func layerFiles(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]file{}
	for _, l := range layers {
		if mt, _ := l.MediaType(); mt != types.OCILayer {
			t.Errorf("layer media type %s, want %s", mt, types.OCILayer)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = file{mode: h.Mode, uid: h.Uid, data: data}
		}
		rc.Close()
	}
	return out
}

func untar(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		path := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(path, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("archive entry %q leaves the directory", h.Name)
		}
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		out, err := os.Create(path)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
}

// runPodman loads the archive into podman, runs the image of this
// machine's architecture on the host network and asks it for
// /logistics/health, then stops it with SIGTERM and wants exit code 0.
func runPodman(t *testing.T, archive string) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("podman is not installed (apt-get install podman runc); CI requires it")
		}
		t.Fatal("CI is set and podman is not installed: apt-get install podman runc")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pm := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, podman, args...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	out, err := pm("load", "-i", archive)
	if err != nil {
		t.Fatalf("podman load: %v\n%s", err, out)
	}
	_, ref, ok := strings.Cut(out, "Loaded image: ")
	if !ok {
		t.Fatalf("podman load printed no image name:\n%s", out)
	}
	ref = strings.TrimSpace(strings.SplitN(ref, "\n", 2)[0])
	t.Cleanup(func() { _, _ = exec.Command(podman, "rmi", "-f", ref).CombinedOutput() })

	addr := freeAddr(t)
	name := fmt.Sprintf("zerodrop-ociimage-test-%d", os.Getpid())
	// runc, not Debian's default crun: on a cgroup v1/v2 hybrid host
	// (this machine) crun refuses with "cgroups in hybrid mode not
	// supported". The rlimits are set below the host's hard limits, since
	// the runtime may not raise them (setrlimit: operation not permitted).
	args := []string{"run", "-d", "--name", name, "--network", "host",
		"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
		"-e", "ZERODROP_ADDR=" + addr, "-e", "ZERODROP_SHUTDOWN_DELAY=1s", ref}
	if _, err := exec.LookPath("runc"); err == nil {
		args = append([]string{"--runtime", "runc"}, args...)
	}
	if out, err := pm(args...); err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Cleanup(func() { _, _ = exec.Command(podman, "rm", "-f", name).CombinedOutput() })

	url := "http://" + addr + "/logistics/health"
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b, err := get(ctx, url)
		if err == nil && code == http.StatusOK {
			body = b
			break
		}
		if time.Now().After(deadline) {
			logs, _ := pm("logs", name)
			t.Fatalf("GET %s: %d %v (container logs:\n%s)", url, code, err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(body, "ready") {
		t.Errorf("GET %s: body %q", url, body)
	}
	if out, err := pm("inspect", "-f", "{{.Config.User}} {{.ImageName}}", name); err != nil || !strings.HasPrefix(out, "65532:65532 ") {
		t.Errorf("podman inspect: %q, %v; want user 65532:65532", out, err)
	}
	if out, err := pm("stop", "-t", "30", name); err != nil {
		t.Fatalf("podman stop: %v\n%s", err, out)
	}
	if out, err := pm("inspect", "-f", "{{.State.ExitCode}}", name); err != nil || out != "0" {
		logs, _ := pm("logs", name)
		t.Errorf("exit code after SIGTERM: %q, %v; want 0 (logs:\n%s)", out, err, logs)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
