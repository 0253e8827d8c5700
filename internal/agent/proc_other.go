//go:build !unix

package agent

import "os/exec"

// killGroupOnCancel leaves the default: the command alone is killed.
func killGroupOnCancel(*exec.Cmd) {}
