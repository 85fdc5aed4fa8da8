package hostsetup

import "errors"

// rootOwned: apimdev installs nothing on Windows (PlanDocker refuses it).
func rootOwned(string) error { return errors.New("apimdev installs no engine on Windows") }
