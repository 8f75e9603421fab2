// Oracle for berth-template tests: runs Go's text/template (with Docker's
// --format functions, re-written here) over JSON-lines cases on stdin.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

type tcase struct {
	Name string          `json:"name"`
	Tmpl string          `json:"tmpl"`
	Data json.RawMessage `json:"data"`
	Opt  string          `json:"opt"`
}

// normalize turns decoded JSON into the typed shapes berth's model assumes:
// integers are int, other numbers float64, arrays of strings []string.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil && !strings.ContainsAny(string(x), ".eE") {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case []any:
		allStr, allInt := len(x) > 0, len(x) > 0
		for i := range x {
			x[i] = normalize(x[i])
			if _, ok := x[i].(string); !ok {
				allStr = false
			}
			if _, ok := x[i].(int); !ok {
				allInt = false
			}
		}
		if allStr {
			s := make([]string, len(x))
			for i := range x {
				s[i] = x[i].(string)
			}
			return s
		}
		if allInt {
			s := make([]int, len(x))
			for i := range x {
				s[i] = x[i].(int)
			}
			return s
		}
		return x
	case map[string]any:
		allStr, allInt := true, len(x) > 0
		for k := range x {
			x[k] = normalize(x[k])
			if _, ok := x[k].(string); !ok {
				allStr = false
			}
			if _, ok := x[k].(int); !ok {
				allInt = false
			}
		}
		if allStr {
			m := map[string]string{}
			for k, v := range x {
				m[k] = v.(string)
			}
			return m
		}
		if allInt {
			m := map[string]int{}
			for k, v := range x {
				m[k] = v.(int)
			}
			return m
		}
		return x
	}
	return v
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b := &bytes.Buffer{}
		e := json.NewEncoder(b)
		e.SetEscapeHTML(false)
		e.Encode(v)
		return strings.TrimSpace(b.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": strings.Title,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, a, b int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", a) + s + strings.Repeat(" ", b)
	},
	"truncate": func(s string, n int) string {
		if len(s) < n {
			return s
		}
		return s[:n]
	},
}

var headerFuncs = template.FuncMap{
	"json":     func(v string) string { return v },
	"split":    func(v string, _ string) string { return v },
	"join":     func(v string, _ string) string { return v },
	"title":    func(v string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"truncate": func(v string, _ int) string { return v },
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var c tcase
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			panic(err)
		}
		var data any
		if len(c.Data) > 0 {
			d := json.NewDecoder(bytes.NewReader(c.Data))
			d.UseNumber()
			if err := d.Decode(&data); err != nil {
				panic(err)
			}
			data = normalize(data)
		}
		res := map[string]string{"name": c.Name}
		t, err := template.New("").Funcs(funcs).Parse(c.Tmpl)
		if err != nil {
			res["err"] = err.Error()
		} else {
			if c.Opt == "header" {
				t = t.Funcs(headerFuncs)
			} else if c.Opt != "" {
				t = t.Option(c.Opt)
			}
			var b strings.Builder
			if err := t.Execute(&b, data); err != nil {
				res["err"] = err.Error()
			}
			res["out"] = b.String()
		}
		out.Encode(res)
	}
	fmt.Fprint(os.Stderr, "")
}
