// Package capdrop is a thin wrapper around runc for machines whose capability bounding set
// lacks capabilities that container specs ask for (on some VMs CAP_SYS_RESOURCE is gone, and
// then every privileged container fails with "unable to apply caps: operation not
// permitted").
//
// Before it execs the real runc it rewrites the OCI spec that runc is about to read:
//   - create/run: <bundle>/config.json (bundle from --bundle/-b, else the working directory)
//   - exec:       the --process/-p file
//
// It removes from every capability list the capabilities that are not in its own bounding
// set (CapBnd of /proc/self/status), and when CAP_SYS_RESOURCE is missing it raises an
// oomScoreAdj below its own to its own value (lowering it needs that capability). On a
// normal host nothing is missing and the spec is left alone.
//
// Three programs run it: scripts/ci/runc-capdrop (built by the e2e rig for its dockerd and
// Podman, and inside the kind node image as containerd's runc BinaryName), and apimdev
// itself when it is run under the name runc-capdrop (what `apimdev docker install
// --runtime-wrapper` installs on a machine that lacks the capability). The real runc is
// $RUNC_CAPDROP_REAL, else the first runc found in the usual system directories that is not
// this program. It imports nothing but the standard library: the rig builds it in a
// throwaway module.
package capdrop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const capSysResource = 24

// capBits maps Linux capability names to their bit numbers (linux/capability.h).
var capBits = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// runc's global flags that take a value (urfave/cli accepts -flag and --flag).
var globalValueFlags = map[string]bool{"log": true, "log-format": true, "root": true, "criu": true, "rootless": true}

// Name is the program name the wrapper runs under.
const Name = "runc-capdrop"

// Main fixes the spec runc is about to read and execs the real runc with args (runc's
// arguments, without a program name). It returns only when that exec failed, with the exit
// code to use.
func Main(args []string) int {
	if spec, isExec := specFile(args); spec != "" {
		if err := fixSpec(spec, isExec); err != nil {
			fmt.Fprintf(os.Stderr, "runc-capdrop: leaving %s as it is: %v\n", spec, err)
		}
	}
	real, err := realRunc()
	if err != nil {
		fmt.Fprintf(os.Stderr, "runc-capdrop: %v\n", err)
		return 127
	}
	err = syscall.Exec(real, append([]string{real}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "runc-capdrop: exec %s: %v\n", real, err)
	return 127
}

// flagName returns the name of a flag argument ("-b", "--bundle=x" -> "b", "bundle") and its
// inline value, or ok=false for a positional argument.
func flagName(arg string) (name, value string, inline, ok bool) {
	if len(arg) < 2 || arg[0] != '-' {
		return "", "", false, false
	}
	name = strings.TrimLeft(arg, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], name[i+1:], true, true
	}
	return name, "", false, true
}

// specFile finds the spec file runc will read for create, run and exec; "" for anything else.
func specFile(args []string) (path string, isExec bool) {
	i := 0
	for ; i < len(args); i++ {
		name, _, inline, ok := flagName(args[i])
		if !ok {
			break
		}
		if globalValueFlags[name] && !inline {
			i++
		}
	}
	if i >= len(args) {
		return "", false
	}
	cmd, rest := args[i], args[i+1:]
	var want []string
	switch cmd {
	case "create", "run":
		want = []string{"bundle", "b"}
	case "exec":
		want = []string{"process", "p"}
	default:
		return "", false
	}
	value := ""
	for j := 0; j < len(rest); j++ {
		name, v, inline, ok := flagName(rest[j])
		if !ok || (name != want[0] && name != want[1]) {
			continue
		}
		if !inline && j+1 < len(rest) {
			v = rest[j+1]
		}
		value = v
		break
	}
	if cmd == "exec" {
		return value, true
	}
	if value == "" {
		value = "."
	}
	return filepath.Join(value, "config.json"), false
}

// BoundingSet reads this process's capability bounding set (CapBnd of
// /proc/self/status).
func BoundingSet() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapBnd in /proc/self/status")
}

func fixSpec(path string, isExec bool) error {
	bnd, err := BoundingSet()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep large integers (memory limits, ids) exact
	if err := dec.Decode(&spec); err != nil {
		return err
	}
	proc := spec // an exec process file is the process object itself
	if !isExec {
		p, ok := spec["process"].(map[string]any)
		if !ok {
			return nil
		}
		proc = p
	}
	changed := false
	if caps, ok := proc["capabilities"].(map[string]any); ok {
		for set, list := range caps {
			names, ok := list.([]any)
			if !ok {
				continue
			}
			kept := make([]any, 0, len(names))
			for _, n := range names {
				s, _ := n.(string)
				if bit, known := capBits[strings.ToUpper(s)]; known && bnd&(1<<bit) == 0 {
					changed = true
					continue
				}
				kept = append(kept, n)
			}
			caps[set] = kept
		}
	}
	if bnd&(1<<capSysResource) == 0 {
		own := ownOOMScoreAdj()
		if raiseOOM(proc, own) {
			changed = true
		}
		if linux, ok := spec["linux"].(map[string]any); ok && !isExec {
			if res, ok := linux["resources"].(map[string]any); ok && raiseOOM(res, own) {
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(spec); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp := path + ".capdrop.tmp"
	if err := os.WriteFile(tmp, out.Bytes(), st.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// raiseOOM sets m["oomScoreAdj"] to own when it is lower; it reports whether it changed it.
func raiseOOM(m map[string]any, own int64) bool {
	v, ok := m["oomScoreAdj"].(json.Number)
	if !ok {
		return false
	}
	n, err := v.Int64()
	if err != nil || n >= own {
		return false
	}
	m["oomScoreAdj"] = json.Number(strconv.FormatInt(own, 10))
	return true
}

func ownOOMScoreAdj() int64 {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func realRunc() (string, error) {
	if p := os.Getenv("RUNC_CAPDROP_REAL"); p != "" {
		return p, nil
	}
	self, _ := os.Executable()
	selfInfo, _ := os.Stat(self)
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc", "/sbin/runc", "/bin/runc"} {
		st, err := os.Stat(p)
		if err != nil || st.IsDir() {
			continue
		}
		if selfInfo != nil && os.SameFile(st, selfInfo) {
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("no real runc found (set RUNC_CAPDROP_REAL)")
}
