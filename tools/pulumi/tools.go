//go:build tools

// Package tools pins the Pulumi CLI (github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) in this module's graph,
// so `go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi` builds it at the version go.mod requires.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
