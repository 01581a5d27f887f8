package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"zerodrop.dev/zerodrop/ociimage"
)

func init() { register(newImageCmd) }

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build the container image of zerodrop without Docker",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newImageBuildCmd())
	return cmd
}

type imageBuildResult struct {
	Output    string            `json:"output"`
	Digest    string            `json:"digest"`
	Platforms map[string]string `json:"platforms"`
}

func newImageBuildCmd() *cobra.Command {
	var (
		out, platforms, output string
		binaries               []string
		opts                   ociimage.Options
	)
	cmd := &cobra.Command{
		Use:   "build -o DIR|FILE.tar [--platform linux/amd64,linux/arm64]",
		Short: "Cross-compile the slim binary and write a multi-platform OCI image",
		Long: `Cross-compile the slim zerodrop binary (no lab control plane, CGO_ENABLED=0,
-trimpath, stripped) for each platform with the Go toolchain, from the module
checkout at --source, and write an OCI image FROM scratch: /zerodrop,
entrypoint ["/zerodrop"], command ["serve"], user 65532:65532, no shell.

-o DIR writes an OCI image layout; -o FILE.tar an OCI archive of it, which
"podman load -i FILE.tar" and "skopeo copy --all oci-archive:FILE.tar docker://REPO:TAG"
read. No Docker engine and no network are needed (Go modules must be in the cache).`,
		Example: `  zerodrop image build -o zerodrop-image.tar
  zerodrop image build -o out/oci --platform linux/arm64 --version v0.3.0
  zerodrop image build -o img.tar --binary linux/amd64=bin/zerodrop-slim --platform linux/amd64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return withExitCode(2, errors.New("image build: -o/--output-path is required (a directory, or a file ending in .tar)"))
			}
			switch output {
			case "text", "json":
			default:
				return withExitCode(2, fmt.Errorf("image build: --format %q: want text or json", output))
			}
			ps, err := ociimage.ParsePlatforms(platforms)
			if err != nil {
				return withExitCode(2, fmt.Errorf("image build: --platform: %w", err))
			}
			opts.Platforms = ps
			opts.Binaries = map[string]string{}
			for _, b := range binaries {
				p, path, ok := strings.Cut(b, "=")
				if !ok || path == "" {
					return withExitCode(2, fmt.Errorf("image build: --binary %q: want PLATFORM=PATH such as linux/amd64=bin/zerodrop-slim", b))
				}
				bp, err := ociimage.ParsePlatforms(p)
				if err != nil {
					return withExitCode(2, fmt.Errorf("image build: --binary: %w", err))
				}
				if !slices.Contains(ps, bp[0]) {
					return withExitCode(2, fmt.Errorf("image build: --binary %s: platform not in --platform %s", b, platforms))
				}
				opts.Binaries[p] = path
			}
			if _, err := os.Stat(out); err == nil && !strings.HasSuffix(out, ".tar") {
				if ents, _ := os.ReadDir(out); len(ents) > 0 {
					return withExitCode(2, fmt.Errorf("image build: -o %s: directory is not empty", out))
				}
			}
			opts.Log = cmd.ErrOrStderr()
			idx, err := ociimage.Build(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("image build: %w", err)
			}
			if err := ociimage.Write(out, idx, ""); err != nil {
				return fmt.Errorf("image build: %w", err)
			}
			res := imageBuildResult{Output: out, Platforms: map[string]string{}}
			d, err := idx.Digest()
			if err != nil {
				return fmt.Errorf("image build: %w", err)
			}
			res.Digest = d.String()
			im, err := idx.IndexManifest()
			if err != nil {
				return fmt.Errorf("image build: %w", err)
			}
			for _, m := range im.Manifests {
				if m.Platform != nil {
					res.Platforms[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest.String()
				}
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(w, "wrote %s: index %s\n", out, res.Digest)
			for _, p := range ps {
				fmt.Fprintf(w, "  %-12s %s\n", p, res.Platforms[p.String()])
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output-path", "o", "", "where to write: a directory (OCI image layout) or FILE.tar (OCI archive)")
	f.StringVar(&platforms, "platform", "linux/amd64,linux/arm64", "comma-separated platforms")
	f.StringVar(&opts.Source, "source", ".", "root of the zerodrop module checkout to compile")
	f.StringVar(&opts.Version, "version", "dev", "version stamped into the binary and the org.opencontainers.image.version label")
	f.StringVar(&opts.Revision, "revision", "", "org.opencontainers.image.revision label (a commit)")
	f.StringVar(&opts.SourceURL, "source-url", ociimage.DefaultSourceURL, "org.opencontainers.image.source label")
	f.StringArrayVar(&binaries, "binary", nil, "PLATFORM=PATH: use this binary instead of compiling one (repeatable)")
	f.StringVar(&output, "format", "text", "what to print: text or json")
	return cmd
}
