package state

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// Who paused a cluster, as its pause record says.
const (
	// PausedByCommand is `apimdev pause`: the background forward holds new
	// connections until `apimdev resume`.
	PausedByCommand = "command"
	// PausedByAuto is the background forward's auto-pause: the next
	// connection through it resumes the cluster.
	PausedByAuto = "auto-pause"
)

// PauseRecord says since when the cluster's nodes are paused, and who
// paused them.
type PauseRecord struct {
	Since time.Time `json:"since"`
	By    string    `json:"by"`
}

func (c ClusterDir) pauseFile() string { return filepath.Join(c.Dir, "paused.json") }

// SavePause records that the cluster is paused (0600).
func (c ClusterDir) SavePause(r PauseRecord) error {
	b, _ := json.Marshal(r)
	return WriteFile(c.pauseFile(), b)
}

// Paused is the pause record, if there is one that can be read.
func (c ClusterDir) Paused() (PauseRecord, bool) {
	if c.Dir == "" {
		return PauseRecord{}, false
	}
	b, err := os.ReadFile(c.pauseFile())
	if err != nil {
		return PauseRecord{}, false
	}
	var r PauseRecord
	if json.Unmarshal(b, &r) != nil || r.Since.IsZero() {
		return PauseRecord{}, false
	}
	return r, true
}

// ForgetPause removes the pause record (the cluster runs again).
func (c ClusterDir) ForgetPause() {
	if c.Dir != "" {
		_ = os.Remove(c.pauseFile())
	}
}

func (c ClusterDir) autoPauseFile() string { return filepath.Join(c.Dir, "autopause.json") }

// SaveAutoPause records the idle time after which the background forward
// pauses the cluster (0: never), as the last `up` was told: a forward that
// runs already reads it from here.
func (c ClusterDir) SaveAutoPause(idle time.Duration) error {
	b, _ := json.Marshal(map[string]string{"idle": idle.String()})
	return WriteFile(c.autoPauseFile(), b)
}

// AutoPause is the recorded idle time, if one is recorded.
func (c ClusterDir) AutoPause() (time.Duration, bool) {
	if c.Dir == "" {
		return 0, false
	}
	b, err := os.ReadFile(c.autoPauseFile())
	if err != nil {
		return 0, false
	}
	var r map[string]string
	if json.Unmarshal(b, &r) != nil {
		return 0, false
	}
	d, err := time.ParseDuration(r["idle"])
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}
