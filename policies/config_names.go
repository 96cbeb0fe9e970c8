package policies

import (
	"net"
	"strconv"
	"strings"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validators of the Kubernetes names a config holds (label keys and values, namespaces,
// registry hosts), after apimachinery's, so that a config cannot name what no object can
// carry: `team~x` is no label key.

// validateLabelKey reports a key that is not a qualified label name ([prefix/]name).
func validateLabelKey(p *field.Path, key string) field.ErrorList {
	if key == "" {
		return field.ErrorList{field.Required(p, "label key")}
	}
	return metav1validation.ValidateLabelName(key, p)
}

// validateLabelValue reports a value that no label can have.
func validateLabelValue(p *field.Path, value string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidLabelValue(value) {
		errs = append(errs, field.Invalid(p, value, msg))
	}
	return errs
}

// validateWorkloadLabel reports a label and values that cannot select the workloads a
// policy applies to (fldPath.label, fldPath.values): high-availability's and
// pod-disruption-budget's.
func validateWorkloadLabel(fldPath *field.Path, label string, values []string) field.ErrorList {
	var errs field.ErrorList
	if label == "" {
		errs = append(errs, field.Required(fldPath.Child("label"), "the label that marks production workloads"))
	} else {
		errs = append(errs, validateLabelKey(fldPath.Child("label"), label)...)
	}
	for i, v := range values {
		errs = append(errs, validateLabelValue(fldPath.Child("values").Index(i), v)...)
	}
	return errs
}

// validateNamespaceName reports a name that is not a namespace name (a DNS-1123 label).
func validateNamespaceName(p *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "namespace name")}
	}
	var errs field.ErrorList
	for _, msg := range apivalidation.ValidateNamespaceName(name, false) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

// validateNamespaceGlob reports a malformed glob, and a glob that no namespace name can
// match: its literal characters (all but * and ?) are checked as a namespace name would be,
// unless it has a character class.
func validateNamespaceGlob(p *field.Path, glob string) field.ErrorList {
	if errs := validateGlob(p, glob); len(errs) > 0 {
		return errs
	}
	if glob == "*" || strings.ContainsAny(glob, "[\\") {
		return nil
	}
	sample := strings.NewReplacer("*", "a", "?", "a").Replace(glob)
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(sample) {
		errs = append(errs, field.Invalid(p, glob, "no namespace matches: "+msg))
	}
	return errs
}

// validateRegistryPrefix reports an allowed-registry entry that is not a registry host
// (a DNS name or IP address, any case, with an optional port) optionally followed by a
// repository path that follows the reference grammar (see parseImageRef).
func validateRegistryPrefix(p *field.Path, entry string) field.ErrorList {
	host, repo, hasRepo := strings.Cut(entry, "/")
	var why []string
	switch {
	case entry == "":
		return field.ErrorList{field.Required(p, "a registry host or repository prefix such as ghcr.io/loom")}
	case strings.Contains(entry, "://"):
		why = append(why, "must not have a scheme")
	default:
		name, port := host, ""
		if strings.HasPrefix(host, "[") {
			end := strings.IndexByte(host, ']')
			if end < 0 || net.ParseIP(host[1:end]) == nil {
				why = append(why, "the host must be a DNS name or an IP address")
			} else if rest := host[end+1:]; rest != "" {
				port, name = strings.TrimPrefix(rest, ":"), ""
				if !strings.HasPrefix(rest, ":") {
					why = append(why, "the host must be a DNS name or an IP address")
				}
			} else {
				name = ""
			}
		} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
			name, port = host[:i], host[i+1:]
			if port == "" {
				why = append(why, "the port must be a number")
			}
		}
		if name != "" {
			for _, msg := range validation.IsDNS1123Subdomain(strings.ToLower(name)) {
				why = append(why, "the host: "+msg)
			}
		}
		if port != "" {
			if n, err := strconv.Atoi(port); err != nil || len(validation.IsValidPortNum(n)) > 0 {
				why = append(why, "the port must be a number between 1 and 65535")
			}
		}
		if hasRepo && !validRepositoryPath(repo) {
			why = append(why, "the repository path must be lower-case letters and digits separated by \".\", \"_\", \"__\", \"-\" or \"/\", without a trailing slash")
		}
	}
	var errs field.ErrorList
	for _, w := range why {
		errs = append(errs, field.Invalid(p, entry, "must be a registry host or repository prefix such as ghcr.io/loom: "+w))
	}
	return errs
}
