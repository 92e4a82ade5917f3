"""gofmt and `go vet` verdicts on generated code, against a small Go module in a real git repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from evaluation.gotools import gofmt_accepts, typecheck
from evaluation.splice import merge_declarations, merge_into_package

# These need Debian's golang-go, which `make test` installs; without it the metric is absent (None).
needs_go = pytest.mark.skipif(
    shutil.which("go") is None or shutil.which("gofmt") is None,
    reason="the Go toolchain is not installed (`make test` installs golang-go); go vet and gofmt are absent",
)

BASE = """package calc

import "fmt"

// Add returns the sum.
func Add(a, b int) int {
	return a + b
}

// Describe names the sum.
func Describe(a, b int) string {
	return fmt.Sprintf("%d", Add(a, b))
}
"""


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True)
    return result.stdout.strip()


def commit(repo: Path, files: dict[str, str]) -> str:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "c")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("gorepo")
    git(repo, "init", "-q")
    return repo


@pytest.fixture(scope="module")
def module_commit(repo) -> str:
    return commit(repo, {"go.mod": "module example.com/m\n\ngo 1.19\n", "calc/calc.go": BASE, "README": "x\n"})


@needs_go
def test_gofmt_accepts_formatted_code_and_fragments_only():
    assert gofmt_accepts(BASE) is True
    assert gofmt_accepts("func Add(a, b int) int {\n\treturn a + b\n}\n") is True  # a fragment: no package clause
    assert gofmt_accepts("func Add(a, b int) int {\n    return a + b\n}\n") is False  # spaces, not a tab
    assert gofmt_accepts("func Add(a,b int) int {\n\treturn a+b\n}\n") is False
    assert gofmt_accepts("func Add(a, b int) int {\n\treturn a + b\n}") is False  # no final line break
    assert gofmt_accepts("func Add( {\n") is False
    assert gofmt_accepts("  \n") is False


def test_gofmt_is_absent_without_go(monkeypatch):
    monkeypatch.setattr("evaluation.gotools._tool", lambda name: None)
    assert gofmt_accepts(BASE) is None
    assert typecheck(Path("/nonexistent"), "0" * 40, "x.go", BASE) == (None, "go is not installed")


def test_merge_replaces_declarations_by_name_and_appends_new_ones():
    generated = (
        "// Add adds.\nfunc Add(a, b int) int {\n\treturn b + a\n}\n\nfunc Sub(a, b int) int {\n\treturn a - b\n}\n"
    )
    merged = merge_declarations(BASE, generated)
    assert "return b + a" in merged and "return a + b" not in merged
    assert "// Add adds.\nfunc Add" in merged and "// Add returns the sum." not in merged
    assert merged.index("func Add") < merged.index("func Describe") < merged.index("func Sub")
    assert merged.endswith("func Sub(a, b int) int {\n\treturn a - b\n}\n")
    with_imports = merge_declarations(
        BASE, 'import (\n\t"fmt"\n\t"strings"\n)\n\nfunc Add(a, b int) int { return 0 }\n'
    )
    assert '"strings"' in with_imports and with_imports.count("import") == 1
    assert with_imports.startswith("package calc\n\nimport (")


@needs_go
def test_vet_accepts_a_good_change_and_reports_type_errors_and_vet_findings(repo, module_commit):
    good = "func Add(a, b int) int {\n\treturn b + a\n}\n\nfunc Twice(a int) int {\n\treturn Add(a, a)\n}\n"
    assert typecheck(repo, module_commit, "calc/calc.go", good) == (True, "")

    ok, output = typecheck(repo, module_commit, "calc/calc.go", 'func Add(a, b int) int {\n\treturn "sum"\n}\n')
    assert ok is False and "calc.go" in output and "cannot use" in output
    assert "hrgc-vet" not in output  # temporary paths are not shown

    printf = 'func Describe(a, b int) string {\n\treturn fmt.Sprintf("%s", Add(a, b))\n}\n'
    ok, output = typecheck(repo, module_commit, "calc/calc.go", printf)
    assert ok is False and "Sprintf" in output

    ok, output = typecheck(repo, module_commit, "calc/calc.go", "func Add( {\n")
    assert ok is False and "does not parse" in output
    assert typecheck(repo, module_commit, "calc/calc.go", "  \n")[0] is False

    # A file the base lacks joins its folder's package.
    assert typecheck(repo, module_commit, "calc/more.go", "func Three() int {\n\treturn Add(1, 2)\n}\n") == (True, "")


@needs_go
def test_vet_is_absent_when_the_base_cannot_be_vetted(repo, module_commit, tmp_path):
    # No go.mod above the file.
    plain = tmp_path / "plain"
    plain.mkdir()
    git(plain, "init", "-q")
    without_module = commit(plain, {"calc/calc.go": BASE})
    ok, why = typecheck(plain, without_module, "calc/calc.go", BASE)
    assert ok is None and "go.mod" in why

    # A module it needs is not at hand, and the network is off: the base fails, so no verdict.
    needs_module = BASE.replace('import "fmt"', 'import (\n\t"fmt"\n\n\t"github.com/absent/dependency"\n)')
    needs_module = needs_module.replace("return a + b", "dependency.Use()\n\treturn a + b")
    broken_base = commit(repo, {"calc/calc.go": needs_module})
    ok, why = typecheck(repo, broken_base, "calc/calc.go", "func Add(a, b int) int {\n\treturn a\n}\n")
    assert ok is None and "base commit does not pass go vet" in why and "absent/dependency" in why

    ok, why = typecheck(repo, "f" * 40, "calc/calc.go", BASE)
    assert ok is None and "cannot be read" in why


@needs_go
def test_a_module_newer_than_the_installed_go_is_named_as_the_reason_vet_is_absent(tmp_path):
    # gin's go.mod says `go 1.24.0`; Debian's Go 1.19 cannot even parse that line. The reason must say so,
    # not that the repository's own code is broken.
    newer = tmp_path / "newer"
    newer.mkdir()
    git(newer, "init", "-q")
    base = commit(newer, {"go.mod": "module example.com/m\n\ngo 1.99.0\n", "calc/calc.go": BASE})
    ok, why = typecheck(newer, base, "calc/calc.go", "func Add(a, b int) int {\n\treturn a\n}\n")
    assert ok is None
    assert why.startswith("the module asks for Go 1.99 and Go 1.") and "install Go 1.99 or newer" in why
    assert "does not pass go vet" not in why


def test_a_declaration_of_another_file_of_the_package_replaces_it_there():
    other = "package calc\n\n// Sub subtracts.\nfunc Sub(a, b int) int {\n\treturn a - b\n}\n"
    generated = (
        'import "strings"\n\nfunc Sub(a, b int) int {\n\treturn b - a\n}\n\nfunc Add(a, b int) int {\n\treturn 0\n}\n'
    )
    changed = merge_into_package({"calc.go": BASE, "sub.go": other}, "calc.go", generated)
    assert changed["sub.go"] == "package calc\n\nfunc Sub(a, b int) int {\n\treturn b - a\n}\n"
    assert "return 0" in changed["calc.go"] and "func Sub" not in changed["calc.go"]
    assert 'import "strings"' in changed["calc.go"]  # imports go to the target file only


@needs_go
def test_vet_judges_a_change_spread_over_two_files_of_one_package(repo, module_commit):
    sub = "package calc\n\nfunc Sub(a, b int) int {\n\treturn a - b\n}\n"
    two_files = commit(repo, {"calc/calc.go": BASE, "calc/sub.go": sub})
    both = "func Add(a, b int) int {\n\treturn Sub(a, -b)\n}\n\nfunc Sub(a, b int) int {\n\treturn a + -b\n}\n"
    assert typecheck(repo, two_files, "calc/calc.go", both) == (True, "")  # not "Sub redeclared"
    ok, output = typecheck(repo, two_files, "calc/calc.go", "func Sub(a, b int) string {\n\treturn a - b\n}\n")
    assert ok is False and "sub.go" in output


def test_a_deletion_mark_removes_the_declaration():
    merged = merge_declarations(BASE, "// deleted: func Describe(a, b int) string\n")
    assert "func Describe" not in merged and "func Add" in merged


@needs_go
def test_vet_judges_code_of_several_files_each_in_its_own_file(repo, module_commit):
    from corpus.code_section import code_of

    test_file = 'package calc\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal("add")\n\t}\n}\n'
    base = commit(repo, {"calc/calc.go": BASE, "calc/calc_test.go": test_file, "calc/sub.go": "package calc\n"})
    # Add moves to a new file, a test is added: the section of a three-file record, as the format writes it.
    section = (
        '\n<FILE path="calc/calc.go">\n<AFTER>\n// deleted: func Add(a, b int) int\n</AFTER>\n</FILE>\n'
        '<FILE path="calc/add.go">\n<AFTER>\npackage calc\n\n// Add adds.\nfunc Add(a, b int) int {\n\treturn a + b\n}\n'
        '</AFTER>\n</FILE>\n<FILE path="calc/calc_test.go">\n<AFTER>\nfunc TestZero(t *testing.T) {\n'
        '\tif Add(0, 0) != 0 {\n\t\tt.Fatal("zero")\n\t}\n}\n</AFTER>\n</FILE>\n</CODE>'
    )
    joined = code_of(section)
    assert gofmt_accepts(joined) is True
    assert typecheck(repo, base, "calc/calc.go", joined) == (True, "")  # not "Add redeclared", not "testing undeclared"
    lost = joined.replace("// Add adds.\nfunc Add(a, b int) int {\n\treturn a + b\n}\n", "")  # deleted, not moved
    ok, output = typecheck(repo, base, "calc/calc.go", lost)
    assert ok is False and "undeclared name: Add" in output


@needs_go
def test_a_failure_under_an_older_go_than_the_module_asks_for_says_so(tmp_path):
    newer = tmp_path / "newer"
    newer.mkdir()
    git(newer, "init", "-q")
    base = commit(newer, {"go.mod": "module example.com/n\n\ngo 1.99\n", "calc/calc.go": BASE})
    ok, why = typecheck(newer, base, "calc/calc.go", 'func Add(a, b int) int {\n\treturn "x"\n}\n')
    # Still a verdict (the base passed under this Go; counting only passes would bias the share), with a note.
    assert ok is False and "cannot use" in why and "the module asks for Go 1.99" in why
    assert typecheck(newer, base, "calc/calc.go", "func Add(a, b int) int {\n\treturn b + a\n}\n") == (True, "")


@needs_go
def test_a_module_that_vendors_its_dependencies_is_judged_offline(tmp_path):
    vendored = tmp_path / "vendored"
    vendored.mkdir()
    git(vendored, "init", "-q")
    uses_dep = BASE.replace('import "fmt"', 'import (\n\t"fmt"\n\n\t"example.com/dep"\n)')
    uses_dep = uses_dep.replace("return a + b", "return dep.Add(a, b)")
    base = commit(
        vendored,
        {
            "go.mod": "module example.com/v\n\ngo 1.19\n\nrequire example.com/dep v1.0.0\n",
            "vendor/modules.txt": "# example.com/dep v1.0.0\n## explicit\nexample.com/dep\n",
            "vendor/example.com/dep/dep.go": "package dep\n\nfunc Add(a, b int) int { return a + b }\n",
            "calc/calc.go": uses_dep,
        },
    )
    good = "func Add(a, b int) int {\n\treturn dep.Add(b, a)\n}\n"
    assert typecheck(vendored, base, "calc/calc.go", good) == (True, "")
    ok, output = typecheck(vendored, base, "calc/calc.go", "func Add(a, b int) int {\n\treturn dep.Sub(a, b)\n}\n")
    assert ok is False and "Sub" in output
