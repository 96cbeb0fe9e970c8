package webhook

import (
	"strconv"
	"unicode/utf8"
)

// Caps on what one response carries, so that a workload with thousands of violations (a Pod
// of 5,000 containers once got a 7.5 MB denial with 35,003 causes and 10,000 warnings) gets
// an answer of bounded size. Whatever is left out is counted in an "and N more" entry:
// nothing is dropped silently, and `loomguard check` on the object lists everything.
const (
	// maxWarningRunes and maxWarningItemRunes are the API server's own limits on the
	// warnings of one request (k8s.io/apiserver/pkg/endpoints/filters/warning.go,
	// truncateAtTotalRunes and truncateItemRunes): past 4 Ki runes in all, it cuts every
	// warning to 256 runes and then drops the rest. loomguard stays within them, so that
	// what the API server passes on is whole and ends with loomguard's own count.
	maxWarningRunes     = 4 * 1024
	maxWarningItemRunes = 256
	// maxAuditValueBytes caps one audit annotation's value: 10 KiB, the API server's limit
	// on a ValidatingAdmissionPolicy's audit annotation values
	// (k8s.io/apiserver/pkg/admission/plugin/policy/validating, maxAuditAnnotationValueLength).
	maxAuditValueBytes = 10 * 1024
	// maxCauses caps a denial's status causes: 50, the API server's limit on the validation
	// failures it records for an admission policy (maxValidationFailures, same package),
	// whose 50 entries it puts at about 10 KB.
	maxCauses = 50
	// maxListed caps the violations a denial's message spells out; its causes list more.
	maxListed = 20
)

// truncateRunes cuts s to at most n runes, marking the cut with "…".
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// capWarnings keeps the warnings, each cut to maxWarningItemRunes, while they fit within
// maxWarningRunes together with a last warning that counts the ones left out.
func capWarnings(warnings []string) []string {
	total := 0
	for _, w := range warnings {
		total += utf8.RuneCountInString(w)
	}
	if total <= maxWarningRunes && !anyLonger(warnings, maxWarningItemRunes) {
		return warnings
	}
	const reserve = 96 // room for the count
	out := make([]string, 0, min(len(warnings), maxWarningRunes/32))
	used := 0
	for i, w := range warnings {
		w = truncateRunes(w, maxWarningItemRunes)
		n := utf8.RuneCountInString(w)
		if used+n > maxWarningRunes-reserve {
			return append(out, "and "+strconv.Itoa(len(warnings)-i)+" more warnings (run `loomguard check` on the object to see them all)")
		}
		used += n
		out = append(out, w)
	}
	return out
}

func anyLonger(ss []string, runes int) bool {
	for _, s := range ss {
		if utf8.RuneCountInString(s) > runes {
			return true
		}
	}
	return false
}

// auditValue builds an audit annotation's value from messages joined with "; ", within
// maxAuditValueBytes: the messages that do not fit are counted at the end.
type auditValue struct {
	b       []byte
	dropped int
}

func (a *auditValue) add(msg string) {
	const reserve = 64 // room for the count
	switch {
	case a.dropped > 0:
		a.dropped++
		return
	case len(a.b) > 0 && len(a.b)+2+len(msg) > maxAuditValueBytes-reserve:
		a.dropped++
		return
	case len(a.b) == 0 && len(msg) > maxAuditValueBytes-reserve:
		msg = truncateRunes(msg, (maxAuditValueBytes-reserve)/utf8.UTFMax)
	}
	if len(a.b) > 0 {
		a.b = append(a.b, "; "...)
	}
	a.b = append(a.b, msg...)
}

func (a *auditValue) String() string {
	if a.dropped == 0 {
		return string(a.b)
	}
	return string(a.b) + "; and " + strconv.Itoa(a.dropped) + " more"
}
