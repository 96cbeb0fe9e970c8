package policies

import (
	"encoding/json"
	"fmt"
)

// Action is what a policy violation does.
type Action string

const (
	// ActionEnforce denies the request.
	ActionEnforce Action = "enforce"
	// ActionWarn admits the request and returns a warning to the client.
	ActionWarn Action = "warn"
	// ActionAudit admits the request silently and records the violation.
	ActionAudit Action = "audit"
	// ActionOff disables the policy.
	ActionOff Action = "off"
)

// Actions lists the valid actions, strongest first.
func Actions() []Action { return []Action{ActionEnforce, ActionWarn, ActionAudit, ActionOff} }

// rank orders actions by strength: enforce > warn > audit > off.
func (a Action) rank() int {
	switch a {
	case ActionEnforce:
		return 3
	case ActionWarn:
		return 2
	case ActionAudit:
		return 1
	default:
		return 0
	}
}

// Valid reports whether a is one of the four actions.
func (a Action) Valid() bool {
	switch a {
	case ActionEnforce, ActionWarn, ActionAudit, ActionOff:
		return true
	}
	return false
}

// atMost returns the weaker of a and ceiling.
func (a Action) atMost(ceiling Action) Action {
	if ceiling.rank() < a.rank() {
		return ceiling
	}
	return a
}

func (a Action) String() string { return string(a) }

// ParseAction parses an action name.
func ParseAction(s string) (Action, error) {
	a := Action(s)
	if !a.Valid() {
		return "", fmt.Errorf("unknown action %q (want enforce, warn, audit or off)", s)
	}
	return a, nil
}

// UnmarshalJSON accepts an action name, and also the boolean false that YAML 1.1 makes
// of an unquoted `off`, so that `action: off` means what it says. Any other value is kept
// as its JSON text (true, 3, [enforce]) for Config.Validate to reject with the field's path:
// a decoding error here would lose it.
func (a *Action) UnmarshalJSON(b []byte) error {
	if string(b) == "false" {
		*a = ActionOff
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		*a = Action(b)
		return nil
	}
	*a = Action(s)
	return nil
}
