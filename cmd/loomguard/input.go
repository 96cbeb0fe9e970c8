package main

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

// stdinName is how stdin is named on the command line and in reports.
const stdinName = "-"

// inputError is a problem with the input: a path that cannot be read, a document that
// cannot be parsed, an object that cannot be decoded. It names the source and, where
// known, the document, its first line and the List item.
type inputError struct {
	source   string
	document int // 0-based document index; -1 when the error is not about one document
	item     int // index in a List's items; -1 otherwise
	line     int // 1-based line: the document's first line, or the error's line without a document
	// at is the 1-based line of the error itself, when the parser said (0 otherwise).
	at  int
	err error
}

func (e *inputError) Error() string {
	var b strings.Builder
	b.WriteString(e.source)
	switch {
	case e.document >= 0 && e.line > 0:
		fmt.Fprintf(&b, ": document %d (line %d)", e.document, e.line)
	case e.document >= 0:
		fmt.Fprintf(&b, ": document %d", e.document)
	case e.line > 0:
		fmt.Fprintf(&b, ": line %d", e.line)
	}
	if e.item >= 0 {
		fmt.Fprintf(&b, ": items[%d]", e.item)
	}
	b.WriteString(": ")
	b.WriteString(e.err.Error())
	return b.String()
}

func (e *inputError) Unwrap() error { return e.err }

// fileError is an error about a whole source.
func fileError(source string, err error) *inputError {
	return &inputError{source: source, document: -1, item: -1, err: unwrapPath(err)}
}

// source is one input file, or stdin.
type source struct {
	name string // as reported: the argument, joined with the path inside a directory
	path string // what to open; "" for stdin
}

// manifestExt reports whether a file found in a directory is read.
func manifestExt(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// expandSources turns -f arguments into sources: a file as given, stdin for "-", and for a
// directory every .yaml, .yml and .json file below it in lexical order, leaving out hidden
// files and directories (such as .git and .github). Paths that cannot be read are errors.
func expandSources(args []string) ([]source, []*inputError) {
	var (
		srcs  []source
		errs  []*inputError
		stdin bool
	)
	for _, arg := range args {
		if arg == stdinName {
			if stdin {
				errs = append(errs, fileError(stdinName, errors.New("stdin given more than once")))
				continue
			}
			stdin = true
			srcs = append(srcs, source{name: stdinName})
			continue
		}
		info, err := os.Stat(arg)
		if err != nil {
			errs = append(errs, fileError(arg, err))
			continue
		}
		if !info.IsDir() {
			srcs = append(srcs, source{name: arg, path: arg})
			continue
		}
		err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, fileError(path, err))
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
			srcs = append(srcs, source{name: filepath.Join(arg, rel), path: path})
			return nil
		})
		if err != nil {
			errs = append(errs, fileError(arg, err))
		}
	}
	return srcs, errs
}

// readSource reads a whole source.
func readSource(s source, stdin io.Reader) ([]byte, error) {
	if s.path == "" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		return data, nil
	}
	return os.ReadFile(s.path)
}

// document is one document of a source: a YAML document between "---" separators, or
// one value of a JSON stream.
type document struct {
	source string
	// index is the 0-based position among the source's documents that have content.
	// Documents holding only comments and blank lines have none (-1): they are skipped,
	// but fix writes them back.
	index int
	// line is the 1-based line where the document's content starts (its first line that is
	// neither blank nor a comment); first is the line of its first byte, against which the
	// YAML parser's line numbers count.
	line, first int
	// raw is the document's original text, without the separator lines.
	raw    []byte
	isJSON bool
	// live marks a cluster object read by `loomguard audit`: it has no file, line or
	// document index, and is named by its source ("cluster") alone.
	live bool
}

// empty reports whether the document holds nothing but comments and blank lines.
func (d *document) empty() bool { return d.index < 0 }

// splitDocuments splits a source into its documents. JSON input (the first character is
// "{") is a stream of JSON values; anything else is YAML, split at lines that start with
// "---" as k8s.io/apimachinery's YAMLReader does, but keeping each document's text byte
// for byte (comments and line endings included) and its position in the file.
// Whitespace-only documents are dropped.
func splitDocuments(source string, data []byte) ([]document, []*inputError) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		return splitJSON(source, data)
	}
	return splitYAML(source, data)
}

func splitYAML(source string, data []byte) ([]document, []*inputError) {
	var (
		docs  []document
		errs  []*inputError
		index int
	)
	add := func(raw []byte, first int) {
		if len(bytes.TrimSpace(raw)) == 0 {
			return
		}
		d := document{source: source, index: -1, first: first, raw: raw}
		if offset, ok := contentLine(raw); ok {
			d.index, d.line = index, first+offset
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
				errs = append(errs, &inputError{source: source, document: -1, item: -1, line: line, at: line,
					err: fmt.Errorf("invalid YAML document separator %q: only a comment may follow ---", bytes.TrimRight(l, "\r\n"))})
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

func splitJSON(source string, data []byte) ([]document, []*inputError) {
	var docs []document
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := int(dec.InputOffset())
		for start < len(data) && isSpace(data[start]) {
			start++
		}
		if start == len(data) {
			return docs, nil
		}
		d := document{source: source, index: len(docs), line: lineAt(data, start), isJSON: true}
		d.first = d.line
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			at := len(data)
			var se *json.SyntaxError
			if errors.As(err, &se) {
				at = int(se.Offset)
			}
			return docs, []*inputError{{source: source, document: d.index, item: -1, line: d.line, at: lineAt(data, at),
				err: fmt.Errorf("parsing JSON: line %d: %w", lineAt(data, at), err)}}
		}
		d.raw = data[start:dec.InputOffset()]
		docs = append(docs, d)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// lineAt returns the 1-based line of a byte offset.
func lineAt(data []byte, offset int) int {
	offset = min(offset, len(data))
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}
