"""Go source parsing with tree-sitter-go: syntax validation and top-level declarations that changed."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass

import tree_sitter
import tree_sitter_go

from corpus.code_section import files_of

# Bigger sources are reported as unparseable instead of tying up a worker for minutes.
MAX_PARSE_CHARS = 4_000_000
MAX_REPORTED_ERRORS = 20
GOFMT_TIMEOUT_S = 20

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_GOFMT_ERROR = re.compile(r"^<standard input>:(\d+):(\d+): (.*)$")
_TYPE_ARGUMENTS = re.compile(r"\[.*\]")


@dataclass(frozen=True)
class Declaration:
    """One top-level func, method or type of a Go file.

    `body_hash` hashes the tokens of the body alone (the block of a func, the type of a type
    declaration), so a renamed declaration keeps it; `decl_hash` hashes the whole declaration
    without comments, so a formatting- or comment-only edit is not a change."""

    kind: str  # "func" | "method" | "type" | "interface"
    name: str
    receiver: str  # "*Server" / "Server" for methods (type arguments dropped), "" otherwise
    start_line: int  # 1-based, inclusive
    end_line: int
    body_hash: str
    decl_hash: str
    calls: frozenset[str] = frozenset()  # callee expressions inside a func/method body
    nil_checks: frozenset[str] = frozenset()  # operands compared with nil inside the body

    @property
    def key(self) -> str:
        """Unique within a Go package: a method is keyed by its receiver type without the pointer."""
        if self.kind == "method":
            return f"{self.receiver.lstrip('*')}.{self.name}"
        return self.name

    @property
    def display(self) -> str:
        """How a plan names it: `handle()`, `(*Server).Start()`, `Server.Stop()`, `Config`."""
        if self.kind == "func":
            return f"{self.name}()"
        if self.kind == "method":
            if self.receiver.startswith("*"):
                return f"({self.receiver}).{self.name}()"
            return f"{self.receiver}.{self.name}()"
        return self.name


@dataclass(frozen=True)
class DeclarationChange:
    """A declaration added, changed or removed between two versions of a file.

    `declaration` is the after version (the before version for "removed"); `previous` is the
    before version of a "changed" declaration."""

    change: str  # "added" | "changed" | "removed"
    declaration: Declaration
    previous: Declaration | None = None


_parse_lock = threading.Lock()


@functools.cache
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_go.language()))


def _encode(source: str) -> bytes:
    # Lone surrogates (from undecodable bytes) cannot be UTF-8 encoded; "?" keeps the parse going.
    return source.encode("utf-8", errors="replace")


@functools.lru_cache(maxsize=16)
def _parse(source: str) -> tuple[tree_sitter.Tree, bytes]:
    data = _encode(source)
    # A Parser is not safe to share between threads; parsing is fast, so one lock is enough.
    with _parse_lock:
        tree = _parser().parse(data)
    return tree, data


def _too_large(source: str) -> bool:
    return len(source) > MAX_PARSE_CHARS


def _position(data: bytes, byte_offset: int) -> tuple[int, int]:
    """1-based line and character column of a byte offset."""
    line_start = data.rfind(b"\n", 0, byte_offset) + 1
    line = data.count(b"\n", 0, line_start) + 1
    column = len(data[line_start:byte_offset].decode("utf-8", errors="replace")) + 1
    return line, column


def _snippet(node: tree_sitter.Node, data: bytes) -> str:
    text = data[node.start_byte : node.end_byte].decode("utf-8", errors="replace")
    first_line = text.strip().split("\n", 1)[0].strip()
    return first_line[:30] if first_line else "end of file"


# What Go allows at the top of a file; tree-sitter-go also accepts statements there (`x := 1`).
TOP_LEVEL_NODES = {
    "package_clause",
    "import_declaration",
    "function_declaration",
    "method_declaration",
    "type_declaration",
    "var_declaration",
    "const_declaration",
    "comment",
    "ERROR",
}


def _top_level_statements(source: str) -> list[str]:
    """Statements at the top of the file. Both tree-sitter-go and gofmt accept them (gofmt takes a
    source without a package clause as a declaration or statement list); a Go file may not hold them."""
    tree, data = _parse(source)
    errors: list[str] = []
    for node in tree.root_node.children:
        if node.is_named and node.type not in TOP_LEVEL_NODES and not node.is_missing:
            line, column = _position(data, node.start_byte)
            errors.append(f"{line}:{column}: {node.type.replace('_', ' ')} outside a function body")
    return errors


def _tree_sitter_errors(source: str) -> list[str]:
    tree, data = _parse(source)
    errors = _top_level_statements(source)
    stack = [tree.root_node]
    while stack and len(errors) < MAX_REPORTED_ERRORS:
        node = stack.pop()
        if node.is_missing:
            line, column = _position(data, node.start_byte)
            errors.append(f'{line}:{column}: missing "{node.type}"')
        elif node.is_error:
            # Report the outermost ERROR only: its children are the same mistake.
            line, column = _position(data, node.start_byte)
            errors.append(f"{line}:{column}: syntax error near {_snippet(node, data)!r}")
        elif node.has_error:
            stack.extend(reversed(node.children))
    return errors


def _gofmt_errors(source: str, gofmt: str) -> list[str] | None:
    """Errors from the real Go parser, or None when gofmt could not run."""
    try:
        result = subprocess.run(
            [gofmt, "-e"],
            input=source.encode("utf-8", errors="surrogateescape"),
            capture_output=True,
            timeout=GOFMT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, UnicodeError):
        return None
    if result.returncode == 0:
        return []
    errors = []
    for line in result.stderr.decode("utf-8", errors="replace").splitlines():
        match = _GOFMT_ERROR.match(line)
        if match:
            errors.append(f"{match[1]}:{match[2]}: {match[3]}")
    return errors[:MAX_REPORTED_ERRORS] if errors else None


def syntax_errors(source: str, *, use_gofmt: bool = True) -> list[str]:
    """Syntax errors as "line:column: message" (1-based), empty when the source parses.

    tree-sitter-go is always used; when a `gofmt` binary is on PATH (and `use_gofmt`) its
    verdict wins, because it is the reference parser and tree-sitter's grammar is lenient."""
    if not isinstance(source, str):
        return ["1:1: not text"]
    if _too_large(source):
        return [f"1:1: source too large to parse ({len(source)} characters)"]
    errors = []
    surrogate = _LONE_SURROGATE.search(source)
    if surrogate:
        line = source.count("\n", 0, surrogate.start()) + 1
        column = surrogate.start() - (source.rfind("\n", 0, surrogate.start()) + 1) + 1
        errors.append(f"{line}:{column}: invalid UTF-8 encoding")
    gofmt = shutil.which("gofmt") if use_gofmt else None
    from_gofmt = _gofmt_errors(source, gofmt) if gofmt else None
    if from_gofmt is None:
        errors.extend(_tree_sitter_errors(source))
    elif from_gofmt and _only_comments(source):
        pass  # gofmt rejects a fragment of comments alone (as it does empty input); the format's `// deleted:` blocks are that
    else:
        errors.extend(from_gofmt or _top_level_statements(source))
    return errors


def _only_comments(source: str) -> bool:
    tree, _ = _parse(source)
    children = tree.root_node.children
    return bool(children) and not tree.root_node.has_error and all(node.type == "comment" for node in children)


def syntax_ok(source: str) -> bool:
    """True when the source is a syntactically valid Go file."""
    return not syntax_errors(source)


EMPTY_ATTEMPT = "empty attempt"


def attempt_errors(code: str) -> list[str]:
    """Why a generated attempt does not count as parsing ([] when it does): the one notion of "parses"
    for generated code (refinement loop, training samples, playground, evaluation).

    Blank or whitespace-only code would "parse" (tree-sitter accepts an empty file); an attempt that
    wrote nothing has not written the change, so it fails here with EMPTY_ATTEMPT. The code of several
    files (`corpus.code_section.code_of`) parses when every file does."""
    if not isinstance(code, str) or not code.strip():
        return [EMPTY_ATTEMPT]
    files = files_of(code)
    if len(files) > 1 or files[0][0]:
        # The code of several files as `code_of` joins it: each file is judged apart, as the loop does.
        return [f"{path}: {error}" for path, text in files for error in attempt_errors(text)]
    return syntax_errors(code)


def attempt_parses(code: str) -> bool:
    """True when a generated attempt holds code and that code parses (`attempt_errors` is empty)."""
    return not attempt_errors(code)


def _node_text(node: tree_sitter.Node, data: bytes) -> str:
    return data[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def _token_hash(node: tree_sitter.Node | None, data: bytes) -> str:
    """sha256 of the node's leaf tokens, comments left out, so layout does not matter."""
    digest = hashlib.sha256()
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if current.type == "comment":
            continue
        if current.child_count == 0:
            digest.update(data[current.start_byte : current.end_byte])
            digest.update(b"\x00")
        else:
            stack.extend(reversed(current.children))
    return digest.hexdigest()


def _body_facts(body: tree_sitter.Node | None, data: bytes) -> tuple[frozenset[str], frozenset[str]]:
    """Callee names and nil-compared operands of a function body (for plan steps)."""
    calls: set[str] = set()
    nil_checks: set[str] = set()
    stack = [body] if body is not None else []
    while stack:
        node = stack.pop()
        if node.type == "call_expression":
            callee = node.child_by_field_name("function")
            text = _node_text(callee, data) if callee is not None else ""
            if text and len(text) <= 60 and "\n" not in text and "(" not in text:
                calls.add(text)
        elif node.type == "binary_expression":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            operator = node.child_by_field_name("operator")
            if left is not None and right is not None and operator is not None and operator.type in ("==", "!="):
                if right.type == "nil" and left.type != "nil":
                    nil_checks.add(_node_text(left, data))
                elif left.type == "nil" and right.type != "nil":
                    nil_checks.add(_node_text(right, data))
        stack.extend(node.children)
    return frozenset(calls), frozenset(nil_checks)


def _receiver_type(receiver: tree_sitter.Node | None, data: bytes) -> str:
    if receiver is None:
        return ""
    for parameter in receiver.named_children:
        type_node = parameter.child_by_field_name("type")
        if type_node is not None:
            return _TYPE_ARGUMENTS.sub("", "".join(_node_text(type_node, data).split()))
    return ""


def _function(node: tree_sitter.Node, data: bytes) -> Declaration | None:
    name = node.child_by_field_name("name")
    if name is None:
        return None
    body = node.child_by_field_name("body")
    calls, nil_checks = _body_facts(body, data)
    is_method = node.type == "method_declaration"
    return Declaration(
        kind="method" if is_method else "func",
        name=_node_text(name, data),
        receiver=_receiver_type(node.child_by_field_name("receiver"), data) if is_method else "",
        start_line=node.start_point.row + 1,
        end_line=node.end_point.row + 1,
        body_hash=_token_hash(body, data),
        decl_hash=_token_hash(node, data),
        calls=calls,
        nil_checks=nil_checks,
    )


def _types(node: tree_sitter.Node, data: bytes) -> list[Declaration]:
    declarations = []
    for spec in node.named_children:
        if spec.type not in ("type_spec", "type_alias"):
            continue
        name, type_node = spec.child_by_field_name("name"), spec.child_by_field_name("type")
        if name is None:
            continue
        # A single spec reports its own lines; `type ( ... )` groups share the keyword.
        span = node if node.named_child_count == 1 else spec
        declarations.append(
            Declaration(
                kind="interface" if type_node is not None and type_node.type == "interface_type" else "type",
                name=_node_text(name, data),
                receiver="",
                start_line=span.start_point.row + 1,
                end_line=span.end_point.row + 1,
                body_hash=_token_hash(type_node, data),
                decl_hash=_token_hash(spec, data),
            )
        )
    return declarations


def declarations(source: str) -> dict[str, Declaration]:
    """Top-level funcs, methods, types and interfaces by key (`handle`, `Server.Start`, `Config`).

    A repeated key (several `func init()`) gets `#2`, `#3`, ... Declarations inside a part of
    the file that does not parse are skipped; a source too large to parse gives {}."""
    if not isinstance(source, str) or _too_large(source):
        return {}
    tree, data = _parse(source)
    found: dict[str, Declaration] = {}
    seen: dict[str, int] = {}
    for node in tree.root_node.children:
        if node.type in ("function_declaration", "method_declaration"):
            function = _function(node, data)
            items = [function] if function is not None else []
        elif node.type == "type_declaration":
            items = _types(node, data)
        else:
            continue
        for declaration in items:
            # One counter per name: numbering 16,000 `func init()` stays linear.
            count = seen[declaration.key] = seen.get(declaration.key, 0) + 1
            found[declaration.key if count == 1 else f"{declaration.key}#{count}"] = declaration
    return found


def changed_declarations(before: str | None, after: str | None) -> list[DeclarationChange]:
    """What was added, changed or removed from `before` to `after` (None: the file did not exist).

    Ordered by line: added/changed by their line in `after`, removed by their line in `before`."""
    old = declarations(before) if before is not None else {}
    new = declarations(after) if after is not None else {}
    changes = []
    for key, declaration in new.items():
        previous = old.get(key)
        if previous is None:
            changes.append(DeclarationChange("added", declaration))
        elif previous.decl_hash != declaration.decl_hash:
            changes.append(DeclarationChange("changed", declaration, previous))
    changes.extend(DeclarationChange("removed", declaration) for key, declaration in old.items() if key not in new)
    order = {"changed": 0, "added": 1, "removed": 2}
    return sorted(changes, key=lambda c: (c.declaration.start_line, order[c.change], c.declaration.key))


# --- top-level outline: what a training record is cut from ---------------------------------------

_OUTLINE_KINDS = {
    "package_clause": "package",
    "import_declaration": "import",
    "function_declaration": "func",
    "method_declaration": "method",
    "type_declaration": "type",
    "const_declaration": "const",
    "var_declaration": "var",
}


@dataclass(frozen=True)
class TopLevel:
    """One top-level piece of a Go file as the parser delimits it, doc comment included.

    `kind` is package/import/func/method/type/interface/const/var, or "other" for anything
    outside a declaration (a free comment, a stray statement). `key` is unique within the file:
    kind and name (methods `Recv.Name`), repeated keys numbered `#2`, `#3`, ... in file order."""

    kind: str
    name: str
    key: str
    display: str  # how a plan names it: handle(), (*Server).Start(), Config
    start_line: int  # 1-based, inclusive, doc comment included
    end_line: int
    text: str  # the source text, doc comment included, no trailing newline
    signature: str  # the declaration without its body: `func (s *Server) Start() error`, `type Config struct`


@dataclass(frozen=True)
class Outline:
    """The top-level pieces of a file in order; `parsed` is False when the parser rejected it."""

    parsed: bool
    items: tuple[TopLevel, ...]


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0].rstrip()


def _signature(node: tree_sitter.Node, data: bytes, kind: str) -> str:
    if kind in ("func", "method"):
        body = node.child_by_field_name("body")
        end = body.start_byte if body is not None else node.end_byte
        return " ".join(data[node.start_byte : end].decode("utf-8", errors="replace").split())
    text = _node_text(node, data)
    if kind in ("type", "interface"):
        head = text.split("{", 1)[0] if "{" in text else _first_line(text)
        return " ".join(head.split())
    return _first_line(text)


def _named(node: tree_sitter.Node, data: bytes) -> tuple[str, str, str, str]:
    """(kind, name, key base, display) of a top-level node."""
    kind = _OUTLINE_KINDS.get(node.type, "other")
    if kind in ("func", "method"):
        name_node = node.child_by_field_name("name")
        name = _node_text(name_node, data) if name_node is not None else ""
        if kind == "method":
            receiver = _receiver_type(node.child_by_field_name("receiver"), data)
            display = f"({receiver}).{name}()" if receiver.startswith("*") else f"{receiver}.{name}()"
            return kind, name, f"method {receiver.lstrip('*')}.{name}", display
        return kind, name, f"func {name}", f"{name}()"
    if kind in ("type", "const", "var"):
        names = []
        for spec in node.named_children:
            if spec.type in ("type_spec", "type_alias", "const_spec", "var_spec"):
                name_node = spec.child_by_field_name("name")
                if name_node is not None:
                    names.append(_node_text(name_node, data))
        name = names[0] if names else ""
        if kind == "type" and len(names) == 1:
            type_node = node.named_children[0].child_by_field_name("type") if node.named_children else None
            if type_node is not None and type_node.type == "interface_type":
                kind = "interface"
        return kind, name, f"{'type' if kind == 'interface' else kind} {name}", name or kind
    if kind == "package":
        return kind, "", "package", "package"
    if kind == "import":
        return kind, "", "import", "import"
    # Outside any declaration: keyed by its text, so an unchanged comment pairs with itself wherever it moved.
    text = _node_text(node, data)
    return "other", "", f"other {hashlib.sha256(text.encode('utf-8', 'replace')).hexdigest()[:16]}", "lines"


def outline(source: str | None) -> Outline:
    """The file's top-level pieces with their doc comments, in file order (linear in the file size).

    A doc comment is the run of comment lines that ends on the line just above a declaration
    with nothing between; other comments are "other" pieces. A source the parser rejects (any
    syntax error) or one too large to parse gives `parsed=False` and no items."""
    if not isinstance(source, str) or _too_large(source):
        return Outline(False, ())
    tree, data = _parse(source)
    root = tree.root_node
    if root.has_error:
        return Outline(False, ())
    items: list[TopLevel] = []
    seen: dict[str, int] = {}
    comments: list[tree_sitter.Node] = []  # the pending run of adjacent comment lines
    starts: list[int] = []  # start byte of each item, so a trailing comment can extend the last one

    def add(node: tree_sitter.Node, first: tree_sitter.Node) -> None:
        kind, name, base, display = _named(node, data)
        count = seen[base] = seen.get(base, 0) + 1
        text = data[first.start_byte : node.end_byte].decode("utf-8", errors="replace")
        starts.append(first.start_byte)
        items.append(
            TopLevel(
                kind=kind,
                name=name,
                key=base if count == 1 else f"{base}#{count}",
                display=display,
                start_line=first.start_point.row + 1,
                end_line=node.end_point.row + 1,
                text=text,
                signature=_signature(node, data, kind) if kind != "other" else "",
            )
        )

    def flush_comments() -> None:
        if comments:
            add_run(comments[0], comments[-1])
            comments.clear()

    def add_run(first: tree_sitter.Node, last: tree_sitter.Node) -> None:
        text = data[first.start_byte : last.end_byte].decode("utf-8", errors="replace")
        base = f"other {hashlib.sha256(text.encode('utf-8', 'replace')).hexdigest()[:16]}"
        count = seen[base] = seen.get(base, 0) + 1
        starts.append(first.start_byte)
        items.append(
            TopLevel(
                kind="other",
                name="",
                key=base if count == 1 else f"{base}#{count}",
                display="lines",
                start_line=first.start_point.row + 1,
                end_line=last.end_point.row + 1,
                text=text,
                signature="",
            )
        )

    previous_end_row = -1
    for node in root.children:
        if not node.is_named:
            continue  # a stray ";" between declarations
        if node.type == "comment":
            if items and not comments and node.start_point.row == previous_end_row and items[-1].kind != "other":
                # A comment on the declaration's last line (`}  // Deprecated`) belongs to it.
                last = items.pop()
                items.append(
                    dataclasses.replace(
                        last,
                        text=data[starts[-1] : node.end_byte].decode("utf-8", "replace"),
                        end_line=node.end_point.row + 1,
                    )
                )
                previous_end_row = node.end_point.row
                continue
            if comments and node.start_point.row != comments[-1].end_point.row + 1:
                flush_comments()
            comments.append(node)
            previous_end_row = node.end_point.row
            continue
        if comments and comments[-1].end_point.row + 1 == node.start_point.row and node.type in _OUTLINE_KINDS:
            first = comments[0]
            comments.clear()
            add(node, first)
        else:
            flush_comments()
            add(node, node)
        previous_end_row = node.end_point.row
    flush_comments()
    return Outline(True, tuple(items))


@dataclass(frozen=True)
class ItemChange:
    """A top-level piece added, changed (its text differs) or removed between two versions of a file."""

    change: str  # "added" | "changed" | "removed"
    key: str
    before: TopLevel | None
    after: TopLevel | None

    @property
    def item(self) -> TopLevel:
        return self.after if self.after is not None else self.before  # type: ignore[return-value]


def changed_items(before: Outline, after: Outline) -> list[ItemChange]:
    """Pieces whose text differs, by key (kind + name + receiver, numbered): one pass over each side.

    Added and changed pieces come in the after file's order, removed ones after them in the
    before file's order. A piece that only moved is not a change."""
    old = {item.key: item for item in before.items}
    new_keys = {item.key for item in after.items}
    changes = []
    for item in after.items:
        previous = old.get(item.key)
        if previous is None:
            changes.append(ItemChange("added", item.key, None, item))
        elif previous.text != item.text:
            changes.append(ItemChange("changed", item.key, previous, item))
    changes.extend(ItemChange("removed", item.key, item, None) for item in before.items if item.key not in new_keys)
    return changes
