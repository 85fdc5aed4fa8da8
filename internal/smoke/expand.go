package smoke

import (
	"fmt"
	"os"
	"strings"
)

// Expander puts ${VAR} (and $VAR) from the environment into the headers and
// bodies of calls sent through the gateway: a subscription key, say, so a
// spec file holds no secret. It never expands the variables that hold
// apimdev's own credentials (Protected), nor any variable whose value is
// or holds one of them (Secrets): the gateway's token and the Entra app's
// client secret must never travel through the gateway to an API backend.
type Expander struct {
	Getenv    func(string) string // nil is os.Getenv
	Protected []string            // variable names never expanded
	Secrets   []string            // values never sent (short ones are ignored)
}

// SecretError says a call would send one of apimdev's credentials.
type SecretError struct {
	Where string // e.g. `smoke call "orders" header Authorization`
	Var   string
	// Held says the variable is not a credential's own but holds one.
	Held bool
}

func (e *SecretError) Error() string {
	if e.Held {
		return fmt.Sprintf("%s uses ${%s}, which holds the gateway's token or client secret: apimdev never sends its credentials through the gateway", e.Where, e.Var)
	}
	return fmt.Sprintf("%s uses ${%s}: apimdev never sends the gateway's token or client secret through the gateway", e.Where, e.Var)
}

// Hint says what to use instead.
func (e *SecretError) Hint() string {
	return "put what your API needs (a subscription key, say) in a variable of its own, e.g. ${APIM_SUBSCRIPTION_KEY}, and use that"
}

// minSecretLen is the shortest credential worth looking for in a value.
const minSecretLen = 8

// Expand returns s with its variables expanded, or a *SecretError naming
// where (for the message) and the variable that would send a credential.
func (e Expander) Expand(where, s string) (string, error) {
	getenv := e.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var bad *SecretError
	out := os.Expand(s, func(name string) string {
		if bad != nil {
			return ""
		}
		for _, p := range e.Protected {
			if name == p {
				bad = &SecretError{Where: where, Var: name}
				return ""
			}
		}
		v := getenv(name)
		for _, sec := range e.Secrets {
			if len(sec) >= minSecretLen && strings.Contains(v, sec) {
				bad = &SecretError{Where: where, Var: name, Held: true}
				return ""
			}
		}
		return v
	})
	if bad != nil {
		return "", bad
	}
	return out, nil
}

// Check expands every header and body of calls without sending anything,
// so a spec that would send a credential is refused before any call.
func (e Expander) Check(calls []Call) error {
	for _, c := range calls {
		if _, _, err := e.call(c); err != nil {
			return err
		}
	}
	return nil
}

// call is c's headers and body, expanded.
func (e Expander) call(c Call) (map[string]string, string, error) {
	where := fmt.Sprintf("smoke call %q", c.Name)
	hs := make(map[string]string, len(c.Headers))
	for k, v := range c.Headers {
		x, err := e.Expand(where+" header "+k, v)
		if err != nil {
			return nil, "", err
		}
		hs[k] = x
	}
	body, err := e.Expand(where+" body", c.Body)
	return hs, body, err
}
