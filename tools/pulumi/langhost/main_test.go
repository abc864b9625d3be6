package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// The test binary doubles as the language host and as a stand-in engine (a process with a gRPC health
// service that starts the host and has it run a program), so the tests can kill a real parent.
func TestMain(m *testing.M) {
	switch os.Getenv("LANGHOST_TEST_ROLE") {
	case "host":
		main()
	case "engine":
		standInEngine()
	default:
		os.Exit(m.Run())
	}
}

// standInEngine serves gRPC health like the engine's host server, starts the host with that address as
// its last argument, has it Run a program, prints `host <pid>` and waits to be killed.
func standInEngine() {
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	host, client := startHost(fmt.Sprintf("127.0.0.1:%d", handle.Port))
	go runProgram(client)
	fmt.Printf("host %d\n", host.Process.Pid)
	select {}
}

// startHost starts the test binary as the language host for the engine at engineAddress and connects
// to the port it prints.
func startHost(engineAddress string) (*exec.Cmd, pulumirpc.LanguageRuntimeClient) {
	host := exec.Command(os.Args[0], engineAddress)
	host.Env = append(os.Environ(), "LANGHOST_TEST_ROLE=host")
	host.Stderr = os.Stderr
	out, err := host.StdoutPipe()
	if err != nil {
		panic(err)
	}
	if err := host.Start(); err != nil {
		panic(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		panic(fmt.Sprintf("reading the host's port: %v", err))
	}
	conn, err := grpc.NewClient("127.0.0.1:"+strings.TrimSpace(line),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	return host, pulumirpc.NewLanguageRuntimeClient(conn)
}

func runProgram(client pulumirpc.LanguageRuntimeClient) {
	dir := os.Getenv("LANGHOST_TEST_PROGRAM_DIR")
	_, _ = client.Run(context.Background(), &pulumirpc.RunRequest{
		Pwd: dir, Info: &pulumirpc.ProgramInfo{ProgramDirectory: dir, EntryPoint: "."},
	})
}

// fakeNode puts a `node` on PATH that records its pid and sleeps, and a run script for the host to find.
func fakeNode(t *testing.T) (pidFile string) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	pidFile = filepath.Join(dir, "node.pid")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho $$ > \"$LANGHOST_TEST_NODE_PID\"\nexec sleep 600\n"
	if err := os.WriteFile(filepath.Join(bin, "node"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run.js")
	if err := os.WriteFile(run, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("PULUMI_LANGUAGE_NODEJS_RUN_PATH", run)
	t.Setenv("LANGHOST_TEST_NODE_PID", pidFile)
	t.Setenv("LANGHOST_TEST_PROGRAM_DIR", dir)
	return pidFile
}

// alive: the process exists and is not a zombie (an exited child nobody has reaped yet).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err) // no /proc (macOS): kill(0) said it exists
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+1:])
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

func waitForPid(t *testing.T, file string) int {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(file); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
	}
	t.Fatalf("the program never started (no pid in %s)", file)
	return 0
}

// assertGone waits up to `within` for every pid to be gone; kills what is left so nothing outlives the test.
func assertGone(t *testing.T, within time.Duration, pids map[string]int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for name, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("the %s (pid %d) is still running %s after its engine went away", name, pid, within)
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestHostAndProgramExitWhenTheEngineIsKilled(t *testing.T) {
	nodePid := fakeNode(t)
	engine := exec.Command(os.Args[0])
	engine.Env = append(os.Environ(), "LANGHOST_TEST_ROLE=engine")
	engine.Stderr = os.Stderr
	out, err := engine.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Process.Kill(); _ = engine.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the host's pid from the stand-in engine: %v", err)
	}
	var hostPid int
	if _, err := fmt.Sscanf(line, "host %d", &hostPid); err != nil {
		t.Fatalf("stand-in engine said %q: %v", line, err)
	}
	node := waitForPid(t, nodePid)

	// SIGKILL, as when `pulumi up` is killed: nothing gets a chance to clean up.
	if err := engine.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = engine.Wait()
	assertGone(t, 5*time.Second, map[string]int{"language host": hostPid, "node program": node})
}

func TestHostAndProgramExitWhenTheEngineStopsAnswering(t *testing.T) {
	nodePid := fakeNode(t)
	cancel := make(chan bool)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{Cancel: cancel})
	if err != nil {
		t.Fatal(err)
	}
	// This test stays the host's parent: only the engine's gRPC address goes away.
	host, client := startHost(fmt.Sprintf("127.0.0.1:%d", handle.Port))
	exited := make(chan struct{})
	go func() { _ = host.Wait(); close(exited) }()
	t.Cleanup(func() { _ = host.Process.Kill(); <-exited })
	go runProgram(client)
	node := waitForPid(t, nodePid)

	time.Sleep(1500 * time.Millisecond) // a healthy engine keeps host and program running
	if !alive(node) {
		t.Fatal("the program stopped while the engine was still answering")
	}
	close(cancel)
	<-handle.Done
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Errorf("the language host (pid %d) is still running 15s after its engine stopped answering", host.Process.Pid)
	}
	assertGone(t, 5*time.Second, map[string]int{"node program": node})
}

func TestRunArgumentsMatchTheSDKRunScript(t *testing.T) {
	h := &nodeHost{engineAddress: "127.0.0.1:9", tracing: ""}
	req := &pulumirpc.RunRequest{
		MonitorAddress: "127.0.0.1:8", Organization: "org", Project: "model-serving", Stack: "dev",
		Pwd: "/p", DryRun: true, Parallel: 16, Args: []string{"extra"},
		Info: &pulumirpc.ProgramInfo{RootDirectory: "/p", ProgramDirectory: "/p", EntryPoint: "."},
	}
	got := h.runArguments(req, "/p/node_modules/@pulumi/pulumi/cmd/run", options{nodeArgs: []string{"--max-old-space-size=4096"}})
	want := []string{
		"--max-old-space-size=4096", "/p/node_modules/@pulumi/pulumi/cmd/run",
		"--monitor", "127.0.0.1:8", "--engine", "127.0.0.1:9", "--organization", "org",
		"--project", "model-serving", "--stack", "dev", "--pwd", "/p", "--root-directory", "/p",
		"--dry-run", "--parallel", "16", ".", "extra",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("runArguments:\n got %q\nwant %q", got, want)
	}
}

func TestRuntimeOptions(t *testing.T) {
	s, err := structpb.NewStruct(map[string]any{"typescript": false, "tsconfig": "tsconfig.pulumi.json", "nodeargs": "--a --b"})
	if err != nil {
		t.Fatal(err)
	}
	got := runtimeOptions(s)
	if got.typescript || got.tsconfig != "tsconfig.pulumi.json" || !reflect.DeepEqual(got.nodeArgs, []string{"--a", "--b"}) {
		t.Fatalf("runtimeOptions = %+v", got)
	}
	if !runtimeOptions(nil).typescript {
		t.Fatal("typescript must default to true")
	}
}

func TestRunEnvironmentCarriesConfigAndSecretKeys(t *testing.T) {
	env, err := runEnvironment(&pulumirpc.RunRequest{
		Config:           map[string]string{"model-serving:mlflow": `{"port":5000}`},
		ConfigSecretKeys: []string{"model-serving:mlflowPassword"},
	}, options{typescript: true, tsconfig: "x.json"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"PULUMI_CONFIG":               `{"model-serving:mlflow":"{\"port\":5000}"}`,
		"PULUMI_CONFIG_SECRET_KEYS":   `["model-serving:mlflowPassword"]`,
		"PULUMI_NODEJS_TYPESCRIPT":    "true",
		"PULUMI_NODEJS_TSCONFIG_PATH": "x.json",
	}
	found := map[string]string{}
	for _, kv := range env {
		for k := range want {
			if len(kv) > len(k) && kv[:len(k)+1] == k+"=" {
				found[k] = kv[len(k)+1:]
			}
		}
	}
	if !reflect.DeepEqual(found, want) {
		t.Fatalf("environment:\n got %v\nwant %v", found, want)
	}
}

func TestPluginsInNodeModules(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, v any) {
		p := filepath.Join(dir, rel, "package.json")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("@pulumi/aws", map[string]any{"name": "@pulumi/aws", "version": "7.1.0", "pulumi": map[string]any{"resource": true}})
	write("@pulumi/pulumi", map[string]any{"name": "@pulumi/pulumi", "version": "3.248.0"})
	write("acme-provider", map[string]any{"name": "acme-provider", "version": "1.0.0",
		"pulumi": map[string]any{"resource": true, "name": "acme", "server": "https://example.invalid"}})

	plugins, err := pluginsInNodeModules(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range plugins {
		got[p.Name] = p.Version + " " + p.Server
	}
	want := map[string]string{"aws": "v7.1.0 ", "acme": "v1.0.0 https://example.invalid"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plugins = %v, want %v", got, want)
	}
	if none, err := pluginsInNodeModules(filepath.Join(dir, "missing")); err != nil || none != nil {
		t.Fatalf("missing node_modules: %v %v", none, err)
	}
}
