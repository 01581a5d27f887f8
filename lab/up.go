package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"zerodrop.dev/zerodrop/lab/controlplane"
	"zerodrop.dev/zerodrop/lab/netns"
)

// envInNamespace tells lab netns that lab up started it in a new network
// namespace.
const envInNamespace = "ZERODROP_LAB_IN_NETNS"

// readyLine is what the lab process writes on its ready pipe once the
// control plane and every node are up.
const readyLine = "ready"

// Up starts a lab and blocks until ctx ends (then stops it) or the lab
// process exits. ready, if not nil, is called once the lab is usable.
func Up(ctx context.Context, cfg Config, progress io.Writer, ready func(State)) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if s, err := ReadState(cfg.Dir); err == nil {
		return fmt.Errorf("a lab is already running in %s (pid %d); stop it with: zerodrop lab down --dir %s", cfg.Dir, s.PID, cfg.Dir)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("creating lab directory: %w", err)
	}
	// A fresh lab: state from an earlier run (etcd data, pods) is removed.
	for _, sub := range []string{"etcd", "pods", "logs", "pki", "kubeconfig", "lab.sock", "events.jsonl", "kubeconfig.yaml"} {
		if err := os.RemoveAll(filepath.Join(cfg.Dir, sub)); err != nil {
			return fmt.Errorf("cleaning lab directory: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("--api-addr %s: %w", cfg.APIAddr, err)
	}
	defer ln.Close()
	lnFile, err := ln.(*net.TCPListener).File()
	if err != nil {
		return fmt.Errorf("handing the API listener to the lab: %w", err)
	}
	defer lnFile.Close()
	apiServer := "https://" + ln.Addr().String()
	cp := controlplane.Config{Dir: cfg.Dir}
	fmt.Fprintf(progress, "lab: certificates and kubeconfigs in %s\n", cfg.Dir)
	if _, err := controlplane.Prepare(cp, apiServer); err != nil {
		return err
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "config.json"), cfgJSON, 0o644); err != nil {
		return fmt.Errorf("writing lab config: %w", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("host listener channel: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "host-listeners"), os.NewFile(uintptr(fds[1]), "host-listeners-lab")
	hostConn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return fmt.Errorf("host listener channel: %w", err)
	}
	defer hostConn.Close()
	go serveHostListeners(hostConn.(*net.UnixConn))
	args := []string{"lab", "netns", "--dir", cfg.Dir}
	if cfg.JSON {
		args = append(args, "-o", "json")
	}
	cmd := exec.Command(cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = progress, progress
	cmd.ExtraFiles = []*os.File{lnFile, readyW, theirs} // fd 3, 4, 5
	cmd.SysProcAttr = netns.IsolationAttrs()
	cmd.Env = append(os.Environ(), envInNamespace+"=1")
	if err := cmd.Start(); err != nil {
		readyW.Close()
		return fmt.Errorf("starting the lab process in its network namespace: %w", err)
	}
	readyW.Close()
	theirs.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	state := State{
		PID: os.Getpid(), LabPID: cmd.Process.Pid, APIServer: apiServer,
		Kubeconfig: filepath.Join(cfg.Dir, "kubeconfig.yaml"), Socket: filepath.Join(cfg.Dir, "lab.sock"),
		Started: time.Now(), TimeScale: cfg.TimeScale,
	}
	gotReady := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(readyR).ReadString('\n')
		gotReady <- line == readyLine+"\n"
	}()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(60 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return <-exited
		}
	}
	defer os.Remove(statePath(cfg.Dir))
	select {
	case ok := <-gotReady:
		if !ok {
			err := <-exited
			return fmt.Errorf("the lab failed to start (see %s): %v", filepath.Join(cfg.Dir, "logs"), exitErr(err))
		}
	case err := <-exited:
		return fmt.Errorf("the lab failed to start (see %s): %v", filepath.Join(cfg.Dir, "logs"), exitErr(err))
	case <-ctx.Done():
		_ = stop()
		return ctx.Err()
	}
	b, _ := json.MarshalIndent(state, "", "  ")
	if err := os.WriteFile(statePath(cfg.Dir), b, 0o644); err != nil {
		_ = stop()
		return fmt.Errorf("writing lab state: %w", err)
	}
	if ready != nil {
		ready(state)
	}
	select {
	case err := <-exited:
		return fmt.Errorf("the lab process exited: %v", exitErr(err))
	case <-ctx.Done():
		fmt.Fprintln(progress, "lab: stopping")
		if err := stop(); err != nil {
			return fmt.Errorf("stopping the lab: %v", exitErr(err))
		}
		return nil
	}
}

func exitErr(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Down stops the lab running in dir (SIGTERM to lab up, SIGKILL after
// timeout) and waits until it is gone.
func Down(dir string, timeout time.Duration) error {
	s, err := ReadState(dir)
	if err != nil {
		return err
	}
	if err := syscall.Kill(s.PID, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping lab pid %d: %w", s.PID, err)
	}
	deadline := time.Now().Add(timeout)
	for alive(s.PID) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(s.PID, syscall.SIGKILL)
			_ = syscall.Kill(s.LabPID, syscall.SIGKILL)
			return errors.New("the lab did not stop in time; killed it")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// inheritedFile returns the file the lab up process passed at fd.
func inheritedFile(fd int, name string) *os.File {
	return os.NewFile(uintptr(fd), name+"-fd"+strconv.Itoa(fd))
}
