package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// engineWatch notices that the engine which started this host is gone. Pulumi's official hosts and
// providers poll the engine's gRPC health service every five minutes (rpcutil.Healthcheck); a killed
// `pulumi up` would leave this host and its program running that long, so this checks every interval:
//   - the parent process: when the engine dies, this host is re-parented (to init or a subreaper) and
//     os.Getppid() changes; that is immediate and needs no network;
//   - the engine's gRPC address: `failures` health checks in a row answered Unavailable (nothing
//     listens there any more). A slow answer (a loaded machine) is not a failure, nor is Unimplemented.
type engineWatch struct {
	parentPid int
	address   string
	interval  time.Duration
	failures  int
}

func (w engineWatch) run(ctx context.Context, gone func(reason string)) {
	var health healthpb.HealthClient
	if w.address != "" {
		conn, err := grpc.NewClient(w.address, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil {
			defer conn.Close()
			health = healthpb.NewHealthClient(conn)
		}
	}
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	failed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if w.parentPid > 1 && os.Getppid() != w.parentPid {
			gone(fmt.Sprintf("the engine (parent process %d) is gone", w.parentPid))
			return
		}
		if health == nil {
			continue
		}
		checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := health.Check(checkCtx, &healthpb.HealthCheckRequest{})
		cancel()
		if status.Code(err) == codes.Unavailable && ctx.Err() == nil {
			failed++
		} else {
			failed = 0
		}
		if failed >= w.failures {
			gone(fmt.Sprintf("the engine at %s does not answer any more (%v)", w.address, status.Convert(err).Message()))
			return
		}
	}
}

// programs are the `node` processes this host runs, so they can be stopped when the engine is gone.
type programs struct {
	mu      sync.Mutex
	running map[*exec.Cmd]chan struct{}
}

// run starts cmd and waits for it, like cmd.Run, keeping it in the set while it runs.
func (p *programs) run(cmd *exec.Cmd) error {
	// The parent-death signal (Linux) fires when the *thread* that started the child exits: keep this
	// goroutine on its thread until the program has ended.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = programProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	p.mu.Lock()
	if p.running == nil {
		p.running = map[*exec.Cmd]chan struct{}{}
	}
	p.running[cmd] = done
	p.mu.Unlock()
	err := cmd.Wait()
	p.mu.Lock()
	delete(p.running, cmd)
	p.mu.Unlock()
	close(done)
	return err
}

// stopAll sends SIGTERM to every running program, and SIGKILL to those still running after grace.
// Only the program's own pid is signalled: it shares the engine's process group, which may hold the
// caller of `pulumi` too.
func (p *programs) stopAll(grace time.Duration) {
	p.mu.Lock()
	running := map[*exec.Cmd]chan struct{}{}
	for cmd, done := range p.running {
		running[cmd] = done
	}
	p.mu.Unlock()
	for cmd := range running {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(grace)
	for cmd, done := range running {
		select {
		case <-done:
		case <-deadline:
			_ = cmd.Process.Kill()
			<-done
		}
	}
}
