package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

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
