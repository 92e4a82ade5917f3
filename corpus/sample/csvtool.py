"""Sample repository hrgc-samples/csvtool (BSD-3-Clause): a CSV command-line tool and its pull requests."""

from __future__ import annotations

from corpus.sample.license_texts import bsd_3_clause
from corpus.sample.spec import (
    ChangeSpec,
    PullSpec,
    RepoSpec,
    append,
    at,
    edit,
    issue,
    on_line,
    rename,
    review,
    write,
)

MAIN_GO = r"""// Command csvtool prints parts of CSV files: the first rows, the row count,
// or selected columns.
package main

import (
    "encoding/csv"
    "fmt"
    "io"
    "os"
    "strconv"
)

func main() {
    if err := run(os.Args[1:], os.Stdout); err != nil {
        fmt.Fprintln(os.Stderr, "csvtool:", err)
        os.Exit(1)
    }
}

func run(args []string, out io.Writer) error {
    if len(args) < 2 {
        return fmt.Errorf("usage: csvtool head|count|select ARGS FILE")
    }
    cmd, rest := args[0], args[1:]
    f, err := os.Open(rest[len(rest)-1])
    if err != nil {
        return err
    }
    defer f.Close()
    r := csv.NewReader(f)
    w := csv.NewWriter(out)
    defer w.Flush()
    switch cmd {
    case "head":
        n := 10
        if len(rest) == 3 && rest[0] == "-n" {
            n, err = strconv.Atoi(rest[1])
            if err != nil {
                return fmt.Errorf("bad -n: %w", err)
            }
        }
        return head(r, w, n)
    case "count":
        return count(r, out)
    case "select":
        if len(rest) != 3 || rest[0] != "-c" {
            return fmt.Errorf("usage: csvtool select -c COLS FILE")
        }
        return selectColumns(r, w, rest[1])
    default:
        return fmt.Errorf("unknown command %q", cmd)
    }
}

// head copies the header and the first n data rows.
func head(r *csv.Reader, w *csv.Writer, n int) error {
    header, err := r.Read()
    if err != nil {
        return err
    }
    if err := w.Write(header); err != nil {
        return err
    }
    for i := 0; i <= n; i++ {
        rec, err := r.Read()
        if err == io.EOF {
            return nil
        }
        if err != nil {
            return err
        }
        if err := w.Write(rec); err != nil {
            return err
        }
    }
    return nil
}

// count prints the number of data rows, not counting the header.
func count(r *csv.Reader, out io.Writer) error {
    n := -1
    for {
        _, err := r.Read()
        if err == io.EOF {
            break
        }
        if err != nil {
            return err
        }
        n++
    }
    if n < 0 {
        n = 0
    }
    _, err := fmt.Fprintln(out, n)
    return err
}
"""

COLUMNS_GO = r"""package main

import (
    "encoding/csv"
    "io"
    "strings"
)

// selectColumns copies the named columns (comma-separated) of every row.
func selectColumns(r *csv.Reader, w *csv.Writer, cols string) error {
    header, err := r.Read()
    if err != nil {
        return err
    }
    index := make(map[string]int, len(header))
    for i, name := range header {
        index[name] = i
    }
    var picks []int
    for _, name := range strings.Split(cols, ",") {
        picks = append(picks, index[name])
    }
    if err := w.Write(project(header, picks)); err != nil {
        return err
    }
    for {
        rec, err := r.Read()
        if err == io.EOF {
            return nil
        }
        if err != nil {
            return err
        }
        if err := w.Write(project(rec, picks)); err != nil {
            return err
        }
    }
}

// project returns the fields of rec at the picked indexes.
func project(rec []string, picks []int) []string {
    out := make([]string, len(picks))
    for i, p := range picks {
        out[i] = rec[p]
    }
    return out
}
"""

COLUMNS_TEST_GO = r"""package main

import (
    "bytes"
    "encoding/csv"
    "strings"
    "testing"
)

func TestSelectColumns(t *testing.T) {
    in := "name,age,city\nada,36,london\nalan,41,wilmslow\n"
    var buf bytes.Buffer
    w := csv.NewWriter(&buf)
    if err := selectColumns(csv.NewReader(strings.NewReader(in)), w, "city,name"); err != nil {
        t.Fatal(err)
    }
    w.Flush()
    want := "city,name\nlondon,ada\nwilmslow,alan\n"
    if buf.String() != want {
        t.Fatalf("got %q, want %q", buf.String(), want)
    }
}
"""

RUN_WITH_FLAGS = r"""func run(args []string, out io.Writer) error {
    if len(args) < 1 {
        return errUsage
    }
    fs := flag.NewFlagSet("csvtool "+args[0], flag.ContinueOnError)
    n := fs.Int("n", 10, "number of rows for head")
    cols := fs.String("c", "", "comma-separated column names for select")
    delim := fs.String("d", ",", `field delimiter: one character, or \t for tab`)
    if err := fs.Parse(args[1:]); err != nil {
        return err
    }
    if fs.NArg() != 1 {
        return errUsage
    }
    comma, err := parseDelimiter(*delim)
    if err != nil {
        return err
    }
    f, err := os.Open(fs.Arg(0))
    if err != nil {
        return err
    }
    defer f.Close()
    r := csv.NewReader(f)
    r.Comma = comma
    w := csv.NewWriter(out)
    w.Comma = comma
    defer w.Flush()
    switch args[0] {
    case "head":
        return head(r, w, *n)
    case "count":
        return count(r, out)
    case "select":
        if *cols == "" {
            return fmt.Errorf("select needs -c COLS")
        }
        return selectColumns(r, w, *cols)
    default:
        return fmt.Errorf("unknown command %q", args[0])
    }
}

var errUsage = errors.New("usage: csvtool head|count|select [flags] FILE")

// parseDelimiter accepts a single character, or `\t` for tab.
func parseDelimiter(s string) (rune, error) {
    if s == `\t` {
        return '\t', nil
    }
    runes := []rune(s)
    if len(runes) != 1 {
        return 0, fmt.Errorf("delimiter must be one character, got %q", s)
    }
    return runes[0], nil
}
"""

OLD_RUN = MAIN_GO[MAIN_GO.index("func run(") : MAIN_GO.index("// head copies")]

RUN_WITH_DISPATCH = r"""    r := csv.NewReader(f)
    r.Comma = comma
    r.ReuseRecord = true
    w := csv.NewWriter(out)
    w.Comma = comma
    defer w.Flush()
    return runCommand(args[0], options{n: *n, cols: *cols}, r, w, out)
}

// options holds the parsed flags that commands use.
type options struct {
    n    int
    cols string
}

// runCommand runs one subcommand on an open reader and writer.
func runCommand(cmd string, opts options, r *csv.Reader, w *csv.Writer, out io.Writer) error {
    switch cmd {
    case "head":
        return head(r, w, opts.n)
    case "count":
        return count(r, out)
    case "select":
        if opts.cols == "" {
            return fmt.Errorf("select needs -c COLS")
        }
        return selectColumns(r, w, opts.cols)
    default:
        return fmt.Errorf("unknown command %q", cmd)
    }
}
"""

MAIN_TEST_GO = r"""package main

import (
    "bytes"
    "os"
    "path/filepath"
    "testing"
)

func writeTemp(t *testing.T, content string) string {
    t.Helper()
    path := filepath.Join(t.TempDir(), "in.csv")
    if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
        t.Fatal(err)
    }
    return path
}

func TestHeadN(t *testing.T) {
    path := writeTemp(t, "a\n1\n2\n3\n")
    var out bytes.Buffer
    if err := run([]string{"head", "-n", "2", path}, &out); err != nil {
        t.Fatal(err)
    }
    if got, want := out.String(), "a\n1\n2\n"; got != want {
        t.Fatalf("got %q, want %q", got, want)
    }
}
"""

PEOPLE_CSV = """name,age,city
Ada Lovelace,36,London
Alan Turing,41,Wilmslow
Grace Hopper,85,Arlington
Katherine Johnson,101,Newport News
Edsger Dijkstra,72,Nuenen
"""

PULLS = (
    PullSpec(
        number=2,
        title="Fix head printing one row too many",
        author="noah-b",
        created=at("2023-06-05 19:20"),
        merged=at("2023-06-06 08:40"),
        labels=("bug",),
        body="`head -n 1` printed two data rows: the loop ran `n+1` times because it used `<=`.",
        changes=(
            edit("main.go", ("    for i := 0; i <= n; i++ {\n", "    for i := 0; i < n; i++ {\n")),
            write("main_test.go", MAIN_TEST_GO),
        ),
        comments=(
            issue("olu-f", "Confirmed on v0.3.0, `head -n 1` printed two rows.", 1),
            review("mira-s", "Thanks for adding a test.", 12),
        ),
    ),
    PullSpec(
        number=3,
        title="Report unknown column names instead of selecting the first column",
        author="olu-f",
        created=at("2023-06-12 10:05"),
        merged=at("2023-06-14 17:30"),
        labels=("bug",),
        body=(
            "A typo in `-c` silently selected column 0, because a missing map key yields the zero "
            "value. Now:\n\n"
            '```\n$ csvtool select -c nmae people.csv\ncsvtool: unknown column "nmae" (have name, age, city)\n```'
        ),
        changes=(
            edit(
                "columns.go",
                ('    "encoding/csv"\n    "io"\n', '    "encoding/csv"\n    "fmt"\n    "io"\n'),
                (
                    "        picks = append(picks, index[name])\n",
                    r"""        i, ok := index[name]
        if !ok {
            return fmt.Errorf("unknown column %q (have %s)", name, strings.Join(header, ", "))
        }
        picks = append(picks, i)
""",
                ),
            ),
            append(
                "columns_test.go",
                r"""
func TestSelectUnknownColumn(t *testing.T) {
    w := csv.NewWriter(&bytes.Buffer{})
    err := selectColumns(csv.NewReader(strings.NewReader("a,b\n1,2\n")), w, "c")
    if err == nil || !strings.Contains(err.Error(), `unknown column "c"`) {
        t.Fatalf("err = %v, want unknown column", err)
    }
}
""",
            ),
        ),
        comments=(
            on_line(
                "mira-s",
                "columns.go",
                "unknown column %q (have %s)",
                "Listing the available columns is a nice touch 👍",
                20,
            ),
        ),
    ),
    PullSpec(
        number=5,
        title="Parse flags with the flag package and add -d for the delimiter",
        author="priya-r",
        created=at("2023-07-01 09:00"),
        merged=at("2023-07-07 12:15"),
        labels=("enhancement",),
        body=(
            "Hand-rolled argument parsing only accepted flags in one position. This switches to a "
            "`flag.FlagSet` per command and adds `-d` so TSV and semicolon files work:\n\n"
            "```\ncsvtool select -d ';' -c name export.csv\ncsvtool head -d '\\t' -n 5 data.tsv\n```"
        ),
        changes=(
            edit(
                "main.go",
                (
                    '    "encoding/csv"\n    "fmt"\n    "io"\n    "os"\n    "strconv"\n',
                    '    "encoding/csv"\n    "errors"\n    "flag"\n    "fmt"\n    "io"\n    "os"\n',
                ),
                (OLD_RUN, RUN_WITH_FLAGS + "\n"),
            ),
            append(
                "main_test.go",
                r"""
func TestSelectWithDelimiter(t *testing.T) {
    path := writeTemp(t, "a;b\n1;2\n")
    var out bytes.Buffer
    if err := run([]string{"select", "-d", ";", "-c", "b", path}, &out); err != nil {
        t.Fatal(err)
    }
    if got, want := out.String(), "b\n2\n"; got != want {
        t.Fatalf("got %q, want %q", got, want)
    }
}

func TestBadDelimiter(t *testing.T) {
    path := writeTemp(t, "a\n")
    if err := run([]string{"count", "-d", "ab", path}, &bytes.Buffer{}); err == nil {
        t.Fatal("two-character delimiter accepted")
    }
}
""",
            ),
        ),
        comments=(
            on_line(
                "mira-s",
                "main.go",
                "if s == `\\t` {",
                "Shells make a literal tab awkward to type, so accepting `\\t` is helpful.",
                30,
            ),
            review("noah-b", "Tried it on a 2 GB TSV export, works.", 100),
        ),
    ),
    PullSpec(
        number=6,
        title="Reuse record buffers while reading",
        author="priya-r",
        created=at("2023-07-10 14:30"),
        merged=at("2023-07-11 09:10"),
        labels=("performance",),
        body=(
            "With `ReuseRecord` the reader keeps one backing slice instead of allocating a new "
            "`[]string` per row; `select` also reuses its output row.\n\n"
            "```\ncsvtool count big.csv   2.91s 1.2 GB alloc  ->  2.02s 180 MB alloc\n```"
        ),
        changes=(
            edit("main.go", ("    r.Comma = comma\n", "    r.Comma = comma\n    r.ReuseRecord = true\n")),
            edit(
                "columns.go",
                (
                    "    if err := w.Write(project(header, picks)); err != nil {\n",
                    (
                        "    row := make([]string, len(picks))\n"
                        "    if err := w.Write(project(header, picks, row)); err != nil {\n"
                    ),
                ),
                (
                    "        if err := w.Write(project(rec, picks)); err != nil {\n",
                    "        if err := w.Write(project(rec, picks, row)); err != nil {\n",
                ),
                (
                    r"""// project returns the fields of rec at the picked indexes.
func project(rec []string, picks []int) []string {
    out := make([]string, len(picks))
    for i, p := range picks {
""",
                    r"""// project copies the fields of rec at the picked indexes into out,
// which must have len(picks); reusing out avoids one allocation per row.
func project(rec []string, picks []int, out []string) []string {
    for i, p := range picks {
""",
                ),
            ),
        ),
        comments=(
            on_line(
                "olu-f",
                "main.go",
                "r.ReuseRecord = true",
                "`head` hands the record to `w.Write`, which copies it into its buffer, so reuse is safe there.",
                3,
            ),
        ),
    ),
    PullSpec(
        number=8,
        title="Extract command dispatch from run",
        author="mira-s",
        created=at("2023-08-01 11:00"),
        merged=at("2023-08-01 16:20"),
        labels=("refactor",),
        changes=(
            edit(
                "main.go",
                (
                    RUN_WITH_FLAGS[
                        RUN_WITH_FLAGS.index("    r := csv.NewReader(f)") : RUN_WITH_FLAGS.index("var errUsage")
                    ].replace("    r.Comma = comma\n", "    r.Comma = comma\n    r.ReuseRecord = true\n"),
                    RUN_WITH_DISPATCH + "\n",
                ),
            ),
        ),
    ),
    PullSpec(
        number=9,
        title="Add stats command with count, min, max and mean",
        author="quinn-t",
        created=at("2023-08-21 08:30"),
        merged=at("2023-08-29 13:00"),
        labels=("enhancement",),
        body=(
            "`csvtool stats -c age people.csv` prints `count=5 min=36 max=101 mean=67`. Empty cells are "
            "skipped; a value that is not a number is an error with its line number."
        ),
        changes=(
            write(
                "stats.go",
                r"""package main

import (
    "encoding/csv"
    "fmt"
    "io"
    "math"
    "strconv"
)

// columnStats summarises the numeric values of one column.
type columnStats struct {
    Count    int
    Min, Max float64
    Sum      float64
}

// Mean returns the average, or NaN for an empty column.
func (s columnStats) Mean() float64 {
    if s.Count == 0 {
        return math.NaN()
    }
    return s.Sum / float64(s.Count)
}

func (s *columnStats) add(v float64) {
    if s.Count == 0 || v < s.Min {
        s.Min = v
    }
    if s.Count == 0 || v > s.Max {
        s.Max = v
    }
    s.Count++
    s.Sum += v
}

// stats prints count, min, max and mean of a numeric column; empty cells are skipped.
func stats(r *csv.Reader, out io.Writer, col string) error {
    header, err := r.Read()
    if err != nil {
        return err
    }
    idx := -1
    for i, name := range header {
        if name == col {
            idx = i
        }
    }
    if idx < 0 {
        return fmt.Errorf("unknown column %q", col)
    }
    var s columnStats
    for line := 2; ; line++ {
        rec, err := r.Read()
        if err == io.EOF {
            break
        }
        if err != nil {
            return err
        }
        if rec[idx] == "" {
            continue
        }
        v, err := strconv.ParseFloat(rec[idx], 64)
        if err != nil {
            return fmt.Errorf("line %d: %w", line, err)
        }
        s.add(v)
    }
    _, err = fmt.Fprintf(out, "count=%d min=%g max=%g mean=%g\n", s.Count, s.Min, s.Max, s.Mean())
    return err
}
""",
            ),
            write(
                "stats_test.go",
                r"""package main

import (
    "bytes"
    "encoding/csv"
    "strings"
    "testing"
)

func TestStats(t *testing.T) {
    in := "name,age\na,30\nb,\nc,60\n"
    var out bytes.Buffer
    if err := stats(csv.NewReader(strings.NewReader(in)), &out, "age"); err != nil {
        t.Fatal(err)
    }
    if got, want := out.String(), "count=2 min=30 max=60 mean=45\n"; got != want {
        t.Fatalf("got %q, want %q", got, want)
    }
}

func TestStatsNotANumber(t *testing.T) {
    in := "age\n30\nthirty\n"
    err := stats(csv.NewReader(strings.NewReader(in)), &bytes.Buffer{}, "age")
    if err == nil || !strings.Contains(err.Error(), "line 3") {
        t.Fatalf("err = %v, want an error for line 3", err)
    }
}
""",
            ),
            edit(
                "main.go",
                (
                    "        return selectColumns(r, w, opts.cols)\n",
                    r"""        return selectColumns(r, w, opts.cols)
    case "stats":
        if opts.cols == "" {
            return fmt.Errorf("stats needs -c COLUMN")
        }
        return stats(r, out, opts.cols)
""",
                ),
                (
                    'errors.New("usage: csvtool head|count|select [flags] FILE")',
                    'errors.New("usage: csvtool head|count|select|stats [flags] FILE")',
                ),
            ),
        ),
        comments=(
            on_line(
                "mira-s",
                "stats.go",
                "for line := 2; ; line++ {",
                "Line numbers start at 2 because the header is line 1? A short comment would help.",
                26,
            ),
            issue("quinn-t", "Yes, exactly. Also fine to leave it since the test documents it.", 30),
            review("mira-s", "Fair enough. Approved.", 190),
        ),
    ),
    PullSpec(
        number=10,
        title="Add people.csv fixture and a golden test for select",
        author="noah-b",
        created=at("2023-09-04 10:00"),
        merged=at("2023-09-05 09:30"),
        body="",
        changes=(
            write("testdata/people.csv", PEOPLE_CSV),
            ChangeSpec(
                path="columns_test.go",
                replacements=(
                    ('    "encoding/csv"\n    "strings"\n', '    "encoding/csv"\n    "os"\n    "strings"\n'),
                ),
                append=r"""
func TestSelectGolden(t *testing.T) {
    f, err := os.Open("testdata/people.csv")
    if err != nil {
        t.Fatal(err)
    }
    defer f.Close()
    var buf bytes.Buffer
    w := csv.NewWriter(&buf)
    if err := selectColumns(csv.NewReader(f), w, "city"); err != nil {
        t.Fatal(err)
    }
    w.Flush()
    if got := strings.Count(buf.String(), "\n"); got != 6 {
        t.Fatalf("got %d lines, want 6 (header and 5 rows)", got)
    }
}
""",
            ),
        ),
    ),
    PullSpec(
        number=12,
        title="Return the error from flushing output",
        author="olu-f",
        created=at("2023-10-09 15:45"),
        merged=at("2023-10-10 10:00"),
        labels=("bug",),
        body=(
            "`defer w.Flush()` dropped write errors, so `csvtool select ... > /dev/full` exited 0. "
            "The error is now checked with `w.Error()` after flushing."
        ),
        changes=(
            edit(
                "main.go",
                (
                    "    defer w.Flush()\n    return runCommand(args[0], options{n: *n, cols: *cols}, r, w, out)\n",
                    r"""    err = runCommand(args[0], options{n: *n, cols: *cols}, r, w, out)
    // csv.Writer buffers; a full disk only shows up when flushing.
    w.Flush()
    if err == nil {
        err = w.Error()
    }
    return err
""",
                ),
            ),
        ),
        comments=(review("priya-r", "Good find. `/dev/full` is a neat way to test this by hand.", 15),),
    ),
    PullSpec(
        number=13,
        title="Rename columns.go to select.go",
        author="mira-s",
        created=at("2023-11-20 09:00"),
        merged=at("2023-11-20 13:30"),
        labels=("refactor",),
        body="Each command now lives in a file named after it (`stats.go`, `select.go`).",
        changes=(
            rename(
                "columns.go",
                "select.go",
                (
                    "// selectColumns copies the named columns (comma-separated) of every row.\n",
                    (
                        "// selectColumns implements the select command: it copies the named\n"
                        "// columns (comma-separated) of every row.\n"
                    ),
                ),
            ),
            rename("columns_test.go", "select_test.go"),
        ),
    ),
    PullSpec(
        number=15,
        title="Ignore a UTF-8 byte order mark before the header",
        author="quinn-t",
        created=at("2024-01-15 12:10"),
        merged=at("2024-01-17 08:45"),
        labels=("bug",),
        body=(
            "Spreadsheet exports often start with a BOM (`EF BB BF`), so the first column was named "
            '`\\ufeffname` and `-c name` failed with "unknown column".'
        ),
        changes=(
            edit(
                "select.go",
                (
                    "    header, err := r.Read()\n    if err != nil {\n        return err\n    }\n",
                    (
                        "    header, err := r.Read()\n    if err != nil {\n        return err\n    }\n"
                        "    header = trimBOM(header)\n"
                    ),
                ),
                (
                    "// project copies",
                    r"""// trimBOM removes the UTF-8 byte order mark that spreadsheet exports put
// before the first header.
func trimBOM(header []string) []string {
    if len(header) > 0 {
        header[0] = strings.TrimPrefix(header[0], "\ufeff")
    }
    return header
}

// project copies""",
                ),
            ),
            edit(
                "stats.go",
                (
                    "    header, err := r.Read()\n    if err != nil {\n        return err\n    }\n",
                    (
                        "    header, err := r.Read()\n    if err != nil {\n        return err\n    }\n"
                        "    header = trimBOM(header)\n"
                    ),
                ),
            ),
            append(
                "select_test.go",
                r"""
func TestSelectWithBOM(t *testing.T) {
    var buf bytes.Buffer
    w := csv.NewWriter(&buf)
    if err := selectColumns(csv.NewReader(strings.NewReader("\ufeffname,age\nada,36\n")), w, "name"); err != nil {
        t.Fatal(err)
    }
    w.Flush()
    if got, want := buf.String(), "name\nada\n"; got != want {
        t.Fatalf("got %q, want %q", got, want)
    }
}
""",
            ),
        ),
        comments=(
            issue("noah-b", "Hit this with an export from LibreOffice last week, thanks!", 20),
            on_line(
                "mira-s",
                "select.go",
                'strings.TrimPrefix(header[0], "\\ufeff")',
                "Only the first field can carry it, so trimming `header[0]` is enough.",
                22,
            ),
        ),
    ),
    PullSpec(
        number=16,
        title="Preallocate column picks in select",
        author="priya-r",
        created=at("2024-02-05 10:30"),
        merged=at("2024-02-06 09:00"),
        labels=("performance",),
        changes=(
            edit(
                "select.go",
                (
                    '    var picks []int\n    for _, name := range strings.Split(cols, ",") {\n',
                    (
                        '    names := strings.Split(cols, ",")\n'
                        "    picks := make([]int, 0, len(names))\n"
                        "    for _, name := range names {\n"
                    ),
                ),
            ),
        ),
    ),
)

REPO = RepoSpec(
    full_name="hrgc-samples/csvtool",
    license_spdx="BSD-3-Clause",
    description="Print the first rows, the row count or selected columns of CSV files",
    stars=530,
    maintainer="mira-s",
    created=at("2023-06-01 20:00"),
    files={
        "LICENSE": bsd_3_clause(2023),
        "README.md": (
            "# csvtool\n\nPrint parts of CSV files from the command line.\n\n"
            "```\ncsvtool head -n 5 people.csv\ncsvtool count people.csv\ncsvtool select -c name,city people.csv\n```\n"
        ),
        "go.mod": "module github.com/hrgc-samples/csvtool\n\ngo 1.21\n",
        "main.go": MAIN_GO,
        "columns.go": COLUMNS_GO,
        "columns_test.go": COLUMNS_TEST_GO,
    },
    pulls=PULLS,
)
