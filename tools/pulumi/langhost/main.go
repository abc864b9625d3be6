// pulumi-language-nodejs for model-serving.
//
// Pulumi's own Node.js language host is a separate Go module that the Go module proxy reachable from
// this project's machines does not serve, so the bootstrap builds this small host instead. It speaks the
// LanguageRuntime gRPC protocol of the pinned Pulumi SDK and runs a program exactly as the official host
// does: `node <program>/node_modules/@pulumi/pulumi/cmd/run <flags> <entrypoint>`, with config and
// secret keys handed over in PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS. What it does not implement
// (dependency installation, `pulumi about` details, code generation) answers Unimplemented, which the
// engine treats as "not supported by this host".
//
// The host does not outlive its engine: it exits, stopping the program it runs first, as soon as the
// process that started it is gone or the engine's gRPC address (the last argument, as for the official
// host) stops answering health checks (engine.go). A `pulumi up` killed with SIGKILL therefore leaves no
// language host and no `node` program behind; on Linux the program is also tied to the host with a
// parent-death signal, so it goes even if the host itself is killed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// version is stamped by the bootstrap with the Pulumi release it was built against.
var version = "dev"

// The exit code @pulumi/pulumi's run script uses after it has already reported the error to the engine.
const exitAfterReportedError = 32

func main() {
	flags := flag.NewFlagSet("pulumi-language-nodejs", flag.ExitOnError)
	tracing := flags.String("tracing", "", "Zipkin-compatible tracing endpoint")
	flags.Bool("logtostderr", false, "log to stderr (accepted for compatibility)")
	flags.Bool("logflow", false, "flow logging settings to child processes (accepted for compatibility)")
	flags.Int("v", 0, "log verbosity (accepted for compatibility)")
	flags.String("root", "", "project root (accepted for compatibility)")
	_ = flags.Parse(os.Args[1:])

	engineAddress := ""
	if flags.NArg() > 0 {
		engineAddress = flags.Arg(flags.NArg() - 1)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-language-nodejs: could not find node on the $PATH")
		os.Exit(1)
	}

	host := &nodeHost{nodeBin: nodeBin, engineAddress: engineAddress, tracing: *tracing}
	// Watch the engine before anything can start a program.
	go engineWatch{
		parentPid: os.Getppid(),
		address:   engineAddress,
		interval:  time.Second,
		failures:  3,
	}.run(context.Background(), func(reason string) {
		// Stop the programs before writing anything: the engine's end of stderr may be gone, and a write
		// to it can end this process with SIGPIPE.
		host.programs.stopAll(5 * time.Second)
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %s; stopped the program and exiting\n", reason)
		os.Exit(1)
	})
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: could not start the RPC server: %v\n", err)
		os.Exit(1)
	}
	// The engine reads the port from our first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: RPC server stopped: %v\n", err)
		os.Exit(1)
	}
}

type nodeHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	nodeBin       string
	engineAddress string
	tracing       string
	programs      programs
}

func (h *nodeHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// GetRequiredPlugins reports the resource plugins of the @pulumi/* packages the program installed, as the
// official host does, so `pulumi plugin ls --project` and plugin installation see the same list.
func (h *nodeHost) GetRequiredPlugins(
	_ context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" {
		dir = req.GetProgram()
	}
	plugins, err := pluginsInNodeModules(filepath.Join(findPackageRoot(dir), "node_modules"))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: plugins}, nil
}

func (h *nodeHost) Run(_ context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	programDir := req.GetInfo().GetProgramDirectory()
	if programDir == "" {
		programDir = req.GetPwd()
	}
	runScript := os.Getenv("PULUMI_LANGUAGE_NODEJS_RUN_PATH")
	if runScript == "" {
		runScript = filepath.Join(findPackageRoot(programDir), "node_modules", "@pulumi", "pulumi", "cmd", "run")
	}
	if _, err := os.Stat(runScript); err != nil {
		return &pulumirpc.RunResponse{Error: "It looks like the Pulumi SDK has not been installed. " +
			"Have you run npm install?"}, nil
	}

	options := runtimeOptions(req.GetInfo().GetOptions())
	env, err := runEnvironment(req, options)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(h.nodeBin, h.runArguments(req, runScript, options)...)
	cmd.Dir = programDir
	cmd.Env = env
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := h.programs.run(cmd); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if status, ok := exitErr.Sys().(syscall.WaitStatus); ok {
				if status.ExitStatus() == exitAfterReportedError {
					return &pulumirpc.RunResponse{Bail: true}, nil
				}
				return &pulumirpc.RunResponse{
					Error: fmt.Sprintf("Program exited with non-zero exit code: %d", status.ExitStatus()),
				}, nil
			}
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Problem executing program: %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

type options struct {
	typescript bool
	tsconfig   string
	nodeArgs   []string
}

// runtimeOptions reads Pulumi.yaml's `runtime.options` (typescript, tsconfig, nodeargs).
func runtimeOptions(s *structpb.Struct) options {
	o := options{typescript: true}
	if s == nil {
		return o
	}
	fields := s.GetFields()
	if v, ok := fields["typescript"]; ok {
		o.typescript = v.GetBoolValue()
	}
	if v, ok := fields["tsconfig"]; ok {
		o.tsconfig = v.GetStringValue()
	}
	if v, ok := fields["nodeargs"]; ok && v.GetStringValue() != "" {
		o.nodeArgs = strings.Fields(v.GetStringValue())
	}
	return o
}

func (h *nodeHost) runArguments(req *pulumirpc.RunRequest, runScript string, o options) []string {
	args := append([]string{}, o.nodeArgs...)
	args = append(args, runScript)
	add := func(flag, value string) {
		if value != "" {
			args = append(args, "--"+flag, value)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engineAddress)
	add("organization", req.GetOrganization())
	add("project", req.GetProject())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("root-directory", req.GetInfo().GetRootDirectory())
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("tracing", h.tracing)

	entry := req.GetInfo().GetEntryPoint()
	if entry == "" {
		entry = req.GetProgram()
	}
	if entry == "" {
		entry = "."
	}
	args = append(args, entry)
	return append(args, req.GetArgs()...)
}

func runEnvironment(req *pulumirpc.RunRequest, o options) ([]string, error) {
	config := req.GetConfig()
	if config == nil {
		config = map[string]string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("serializing config: %w", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretKeysJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("serializing secret config keys: %w", err)
	}
	env := append(os.Environ(),
		"PULUMI_CONFIG="+string(configJSON),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeysJSON),
		"PULUMI_NODEJS_TYPESCRIPT="+strconv.FormatBool(o.typescript),
	)
	if o.tsconfig != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+o.tsconfig)
	}
	return env, nil
}

// findPackageRoot walks up from dir to the nearest folder holding a package.json.
func findPackageRoot(dir string) string {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "package.json")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return dir
		}
		d = parent
	}
}

type packageJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Pulumi  struct {
		Resource bool   `json:"resource"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Server   string `json:"server"`
	} `json:"pulumi"`
}

// pluginsInNodeModules lists the resource plugins declared by packages directly under node_modules
// (and its @scope folders).
func pluginsInNodeModules(nodeModules string) ([]*pulumirpc.PluginDependency, error) {
	var packageDirs []string
	entries, err := os.ReadDir(nodeModules)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	for _, e := range entries {
		path := filepath.Join(nodeModules, e.Name())
		if strings.HasPrefix(e.Name(), "@") {
			scoped, err := os.ReadDir(path)
			if err != nil {
				continue
			}
			for _, s := range scoped {
				packageDirs = append(packageDirs, filepath.Join(path, s.Name()))
			}
		} else {
			packageDirs = append(packageDirs, path)
		}
	}
	var plugins []*pulumirpc.PluginDependency
	for _, dir := range packageDirs {
		raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err != nil {
			continue
		}
		var pkg packageJSON
		if json.Unmarshal(raw, &pkg) != nil || !pkg.Pulumi.Resource {
			continue
		}
		name := pkg.Pulumi.Name
		if name == "" {
			name = strings.TrimPrefix(strings.TrimPrefix(pkg.Name, "@pulumi/"), "@")
		}
		v := pkg.Pulumi.Version
		if v == "" {
			v = pkg.Version
		}
		if v != "" && !strings.HasPrefix(v, "v") {
			v = "v" + v
		}
		plugins = append(plugins, &pulumirpc.PluginDependency{
			Name: name, Kind: "resource", Version: v, Server: pkg.Pulumi.Server,
		})
	}
	return plugins, nil
}
