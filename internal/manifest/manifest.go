// Package manifest reads Kubernetes manifests the way the CLI takes them: files, directories
// and stdin (ExpandSources, ReadSource), split into YAML documents or JSON values with each
// document's original text and its line in the file (SplitDocuments), and errors that name
// the file, the document, its line and the List item (Error).
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Stdin is how stdin is named on the command line and in reports.
const Stdin = "-"

// Error is a problem with the input: a path that cannot be read, a document that
// cannot be parsed, an object that cannot be decoded. It names the source and, where
// known, the document, its first line and the List item.
type Error struct {
	Source   string // the file as named on the command line, "-" for stdin
	Document int    // 0-based document index; -1 when the error is not about one document
	Item     int    // index in a List's items; -1 otherwise
	Line     int    // 1-based line: the document's first line, or the error's line without a document
	// At is the 1-based line of the error itself, when the parser said (0 otherwise).
	At  int
	Err error
}

// Error is "source: document N (line L): items[i]: error", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	switch {
	case e.Document >= 0 && e.Line > 0:
		fmt.Fprintf(&b, ": document %d (line %d)", e.Document, e.Line)
	case e.Document >= 0:
		fmt.Fprintf(&b, ": document %d", e.Document)
	case e.Line > 0:
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Item >= 0 {
		fmt.Fprintf(&b, ": items[%d]", e.Item)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// FileError is an error about a whole source.
func FileError(source string, err error) *Error {
	return &Error{Source: source, Document: -1, Item: -1, Err: UnwrapPath(err)}
}

// Source is one input file, or stdin.
type Source struct {
	Name string // as reported: the argument, joined with the path inside a directory
	Path string // what to open; "" for stdin
}

// manifestExt reports whether a file found in a directory is read.
func manifestExt(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// ExpandSources turns -f arguments into sources: a file as given, stdin for "-", and for a
// directory every .yaml, .yml and .json file below it in lexical order, leaving out hidden
// files and directories (such as .git and .github). Paths that cannot be read are errors.
func ExpandSources(args []string) ([]Source, []*Error) {
	var (
		srcs  []Source
		errs  []*Error
		stdin bool
	)
	for _, arg := range args {
		if arg == Stdin {
			if stdin {
				errs = append(errs, FileError(Stdin, errors.New("stdin given more than once")))
				continue
			}
			stdin = true
			srcs = append(srcs, Source{Name: Stdin})
			continue
		}
		info, err := os.Stat(arg)
		if err != nil {
			errs = append(errs, FileError(arg, err))
			continue
		}
		if !info.IsDir() {
			srcs = append(srcs, Source{Name: arg, Path: arg})
			continue
		}
		err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, FileError(path, err))
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if path != arg && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() || !manifestExt(d.Name()) {
				return nil
			}
			rel, err := filepath.Rel(arg, path)
			if err != nil {
				return fmt.Errorf("locating %s: %w", path, err)
			}
			srcs = append(srcs, Source{Name: filepath.Join(arg, rel), Path: path})
			return nil
		})
		if err != nil {
			errs = append(errs, FileError(arg, err))
		}
	}
	return srcs, errs
}

// ReadSource reads a whole source.
func ReadSource(s Source, stdin io.Reader) ([]byte, error) {
	if s.Path == "" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		return data, nil
	}
	return os.ReadFile(s.Path)
}

// Document is one document of a source: a YAML document between "---" separators, or
// one value of a JSON stream.
type Document struct {
	Source string // the file as named on the command line, "-" for stdin
	// Index is the 0-based position among the source's documents that have content.
	// Documents holding only comments and blank lines have none (-1): they are skipped,
	// but fix writes them back.
	Index int
	// Line is the 1-based line where the document's content starts (its first line that is
	// neither blank nor a comment); First is the line of its first byte, against which the
	// YAML parser's line numbers count.
	Line, First int
	// Raw is the document's original text, without the separator lines.
	Raw []byte
	// IsJSON says the source is a JSON stream, not YAML.
	IsJSON bool
	// Live marks a cluster object read by `loomguard audit`: it has no file, line or
	// document index, and is named by its source ("cluster") alone.
	Live bool
}

// Empty reports whether the document holds nothing but comments and blank lines.
func (d *Document) Empty() bool { return d.Index < 0 }

// SplitDocuments splits a source into its documents. JSON input (the first character is
// "{") is a stream of JSON values; anything else is YAML, split at lines that start with
// "---" as k8s.io/apimachinery's YAMLReader does, but keeping each document's text byte
// for byte (comments and line endings included) and its position in the file.
// Whitespace-only documents are dropped.
func SplitDocuments(source string, data []byte) ([]Document, []*Error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		return splitJSON(source, data)
	}
	return splitYAML(source, data)
}

func splitYAML(source string, data []byte) ([]Document, []*Error) {
	var (
		docs  []Document
		errs  []*Error
		index int
	)
	add := func(raw []byte, first int) {
		if len(bytes.TrimSpace(raw)) == 0 {
			return
		}
		d := Document{Source: source, Index: -1, First: first, Raw: raw}
		if offset, ok := contentLine(raw); ok {
			d.Index, d.Line = index, first+offset
			index++
		}
		docs = append(docs, d)
	}
	start, first, line := 0, 1, 1
	for off := 0; off < len(data); line++ {
		next := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		if l := data[off:next]; bytes.HasPrefix(l, []byte("---")) {
			if rest := bytes.TrimSpace(l[3:]); len(rest) > 0 && rest[0] != '#' {
				errs = append(errs, &Error{Source: source, Document: -1, Item: -1, Line: line, At: line,
					Err: fmt.Errorf("invalid YAML document separator %q: only a comment may follow ---", bytes.TrimRight(l, "\r\n"))})
			}
			add(data[start:off], first)
			start, first = next, line+1
		}
		off = next
	}
	add(data[start:], first)
	return docs, errs
}

// contentLine returns the 0-based offset of the first line of raw that is neither blank
// nor a comment, and false when there is none.
func contentLine(raw []byte) (int, bool) {
	for n := 0; len(raw) > 0; n++ {
		l := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			l, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			return n, true
		}
	}
	return 0, false
}

func splitJSON(source string, data []byte) ([]Document, []*Error) {
	var docs []Document
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := int(dec.InputOffset())
		for start < len(data) && isSpace(data[start]) {
			start++
		}
		if start == len(data) {
			return docs, nil
		}
		d := Document{Source: source, Index: len(docs), Line: lineAt(data, start), IsJSON: true}
		d.First = d.Line
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			at := len(data)
			var se *json.SyntaxError
			if errors.As(err, &se) {
				at = int(se.Offset)
			}
			return docs, []*Error{{Source: source, Document: d.Index, Item: -1, Line: d.Line, At: lineAt(data, at),
				Err: fmt.Errorf("parsing JSON: line %d: %w", lineAt(data, at), err)}}
		}
		d.Raw = data[start:dec.InputOffset()]
		docs = append(docs, d)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// lineAt returns the 1-based line of a byte offset.
func lineAt(data []byte, offset int) int {
	offset = min(offset, len(data))
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}

// UnwrapPath drops the operation and path from an os error whose path is already named.
func UnwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
