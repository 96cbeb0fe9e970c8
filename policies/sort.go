package policies

import (
	"cmp"
	"maps"
	"slices"
)

// sortedKeys returns a map's keys in order, for deterministic messages.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}
