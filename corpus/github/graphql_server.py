"""The GitHub-shaped server's GraphQL endpoint: GitHub's field names over the same story, with its point accounting.

Cost follows GitHub's documented rule: add up the requests needed to fill every connection
(each connection's `first`/`last` times the connections above it), divide by 100, round, at
least 1. A connection without `first`/`last`, or asking for more than 100, is refused as GitHub
refuses it."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
    value_from_ast_untyped,
)

if TYPE_CHECKING:
    from corpus.github.server import GitHubShapedServer, _Repo
    from corpus.records import CommentRecord, PRRecord

SDL = """
scalar DateTime
scalar GitObjectID
scalar URI
scalar BigInt

enum PullRequestState { OPEN CLOSED MERGED }
enum IssueOrderField { CREATED_AT UPDATED_AT COMMENTS }
enum OrderDirection { ASC DESC }
enum PatchStatus { ADDED DELETED RENAMED COPIED MODIFIED CHANGED }
enum PullRequestReviewState { PENDING COMMENTED APPROVED CHANGES_REQUESTED DISMISSED }
input IssueOrder { field: IssueOrderField!, direction: OrderDirection! }

type Query {
  repository(owner: String!, name: String!): Repository
  rateLimit(dryRun: Boolean = false): RateLimit
}

type RateLimit { cost: Int! limit: Int! nodeCount: Int! remaining: Int! resetAt: DateTime! used: Int! }
type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! endCursor: String startCursor: String }

interface Actor { login: String! }
type User implements Actor { login: String! }

type License { key: String! name: String! spdxId: String }
type Commit { oid: GitObjectID! }
type Ref { name: String! target: Commit }

type Repository {
  id: ID!
  name: String!
  nameWithOwner: String!
  owner: User!
  description: String
  isFork: Boolean!
  isArchived: Boolean!
  stargazerCount: Int!
  url: URI!
  pushedAt: DateTime
  licenseInfo: License
  defaultBranchRef: Ref
  pullRequests(states: [PullRequestState!], orderBy: IssueOrder, first: Int, after: String, last: Int,
               before: String): PullRequestConnection!
  pullRequest(number: Int!): PullRequest
}

type PullRequestConnection { nodes: [PullRequest] pageInfo: PageInfo! totalCount: Int! }
type PullRequest {
  id: ID!
  number: Int!
  title: String!
  body: String!
  url: URI!
  author: Actor
  createdAt: DateTime!
  updatedAt: DateTime!
  mergedAt: DateTime
  merged: Boolean!
  state: PullRequestState!
  baseRefName: String!
  baseRefOid: GitObjectID!
  headRefOid: GitObjectID!
  mergeCommit: Commit
  labels(first: Int, after: String, last: Int, before: String): LabelConnection
  comments(first: Int, after: String, last: Int, before: String): IssueCommentConnection!
  reviews(first: Int, after: String, last: Int, before: String): PullRequestReviewConnection
  reviewThreads(first: Int, after: String, last: Int, before: String): PullRequestReviewThreadConnection!
  files(first: Int, after: String, last: Int, before: String): PullRequestChangedFileConnection
}

type Label { name: String! }
type LabelConnection { nodes: [Label] pageInfo: PageInfo! totalCount: Int! }

type IssueComment { databaseId: Int fullDatabaseId: BigInt body: String! author: Actor createdAt: DateTime! }
type IssueCommentConnection { nodes: [IssueComment] pageInfo: PageInfo! totalCount: Int! }

type PullRequestReview {
  databaseId: Int fullDatabaseId: BigInt body: String! author: Actor createdAt: DateTime! submittedAt: DateTime
  state: PullRequestReviewState!
}
type PullRequestReviewConnection { nodes: [PullRequestReview] pageInfo: PageInfo! totalCount: Int! }

type PullRequestReviewComment {
  databaseId: Int fullDatabaseId: BigInt body: String! author: Actor createdAt: DateTime! path: String! line: Int originalLine: Int
  diffHunk: String!
}
type PullRequestReviewCommentConnection { nodes: [PullRequestReviewComment] pageInfo: PageInfo! totalCount: Int! }
type PullRequestReviewThread {
  path: String! line: Int isResolved: Boolean!
  comments(first: Int, after: String, last: Int, before: String): PullRequestReviewCommentConnection!
}
type PullRequestReviewThreadConnection { nodes: [PullRequestReviewThread] pageInfo: PageInfo! totalCount: Int! }

type PullRequestChangedFile { path: String! additions: Int! deletions: Int! changeType: PatchStatus! }
type PullRequestChangedFileConnection { nodes: [PullRequestChangedFile] pageInfo: PageInfo! totalCount: Int! }
"""

SCHEMA = build_schema(SDL)
CONNECTION_LIMIT = 100
NODE_LIMIT = 500_000
PARTIAL_ERROR = (
    "Something went wrong while executing your query. This may be the result of a timeout, or it could be a "
    "GitHub bug. Please include `{request id}` when reporting this issue."
)
_CHANGE_TYPES = {"added": "ADDED", "removed": "DELETED", "renamed": "RENAMED", "modified": "MODIFIED"}


class QueryRefused(Exception):
    """A query GitHub would refuse before running it (bad syntax, unknown field, unbounded connection)."""

    def __init__(self, errors: list[dict]):
        super().__init__(errors[0]["message"] if errors else "refused")
        self.errors = errors


def prepare(query: str, variables: dict[str, Any] | None) -> tuple[Any, int, int]:
    """Parse, validate and price a query: (document, cost in points, node count). Raises QueryRefused."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise QueryRefused([exc.formatted]) from None
    problems = validate(SCHEMA, document)
    if problems:
        raise QueryRefused([p.formatted for p in problems])
    fragments = {d.name.value: d for d in document.definitions if hasattr(d, "type_condition")}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    requests = nodes = 0
    errors: list[dict] = []
    variables = variables or {}

    def walk(selection_set, multiplier: int) -> None:
        nonlocal requests, nodes
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                args = {a.name.value: value_from_ast_untyped(a.value, variables) for a in selection.arguments or ()}
                child = multiplier
                if _is_connection(selection):
                    size = args.get("first") if args.get("first") is not None else args.get("last")
                    name = selection.name.value
                    if size is None:
                        errors.append(
                            {
                                "message": f"You must provide a `first` or `last` value to properly paginate the "
                                f"`{name}` connection.",
                                "type": "MISSING_PAGINATION_BOUNDARIES",
                                "path": [name],
                            }
                        )
                        size = 0
                    elif not 0 <= int(size) <= CONNECTION_LIMIT:
                        errors.append(
                            {
                                "message": f"Requesting {size} records on the `{name}` connection exceeds the "
                                f"`first` limit of {CONNECTION_LIMIT} records.",
                                "type": "EXCESSIVE_PAGINATION",
                                "path": [name],
                            }
                        )
                    requests += multiplier
                    child = multiplier * int(size)
                    nodes += child
                if selection.selection_set is not None:
                    walk(selection.selection_set, child)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, multiplier)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
                walk(fragments[selection.name.value].selection_set, multiplier)

    for operation in operations:
        walk(operation.selection_set, 1)
    if errors:
        raise QueryRefused(errors)
    if nodes > NODE_LIMIT:
        raise QueryRefused([{"message": f"This query requests up to {nodes} possible nodes, over {NODE_LIMIT}."}])
    return document, max(1, math.floor(requests / 100 + 0.5)), nodes


def _is_connection(field: FieldNode) -> bool:
    names = {a.name.value for a in field.arguments or ()}
    return bool(names & {"first", "last"}) or field.name.value in _CONNECTIONS


_CONNECTIONS = {"pullRequests", "labels", "comments", "reviews", "reviewThreads", "files"}


def run(
    app: GitHubShapedServer,
    document: Any,
    variables: dict[str, Any] | None,
    rate_limit: dict[str, Any],
    *,
    break_one: bool = False,
) -> dict[str, Any]:
    """Execute a prepared query; with `break_one`, the first PR's comments fail (partial data, as GitHub does)."""
    state = {"break": break_one}
    root = {
        "repository": lambda info, owner, name: _repository(app, owner, name, state),
        "rateLimit": lambda info, dryRun=False: rate_limit,
    }
    result = execute(SCHEMA, document, root_value=root, variable_values=variables or {})
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [_github_error(e) for e in result.errors]
    return out


def _github_error(error: GraphQLError) -> dict[str, Any]:
    formatted = dict(error.formatted)
    if error.original_error is not None and isinstance(error.original_error, LookupError):
        formatted["type"] = "NOT_FOUND"
    return formatted


class _NotFound(LookupError):
    pass


def _repository(app: GitHubShapedServer, owner: str, name: str, state: dict) -> dict[str, Any] | None:
    found = app._repos.get(f"{owner}/{name}".lower())
    if found is None:
        raise _NotFound(f"Could not resolve to a Repository with the name '{owner}/{name}'.")
    rest = app.repo_json(found.record)
    spdx = found.record.license_spdx
    licence = None
    if rest["license"]:
        licence = {"key": rest["license"]["key"], "name": rest["license"]["name"], "spdxId": spdx}
    default = found.record.default_branch
    head = found.head_oid
    return {
        "id": f"R_{rest['id']}",
        "name": rest["name"],
        "nameWithOwner": found.record.full_name,
        "owner": {"login": rest["owner"]["login"], "__typename": "User"},
        "description": rest["description"],
        "isFork": rest["fork"],
        "isArchived": rest["archived"],
        "stargazerCount": rest["stargazers_count"],
        "url": rest["html_url"],
        "pushedAt": rest["pushed_at"],
        "licenseInfo": licence,
        "defaultBranchRef": {"name": default, "target": {"oid": head} if head else None},
        "pullRequests": lambda info, **args: _pull_requests(app, found, args, state),
        "pullRequest": lambda info, number: _pull(app, found, found.pulls.get(number), state),
    }


def _pull_requests(app: GitHubShapedServer, repo: _Repo, args: dict, state: dict) -> dict[str, Any]:
    from corpus.github.server import _created_at, _updated_at

    states = set(args.get("states") or ["OPEN", "CLOSED", "MERGED"])
    pulls = [p for p in repo.pulls.values() if ("MERGED" if p.merged_at else "CLOSED") in states]
    order = args.get("orderBy") or {"field": "CREATED_AT", "direction": "ASC"}
    key = _updated_at if order["field"] == "UPDATED_AT" else _created_at
    pulls.sort(key=lambda p: (key(p), p.number), reverse=order["direction"] == "DESC")
    return _connection(pulls, args, lambda p: _pull(app, repo, p, state))


def _pull(app: GitHubShapedServer, repo: _Repo, pr: PRRecord | None, state: dict) -> dict[str, Any] | None:
    if pr is None:
        return None
    rest = app.pull_json(repo, pr)
    return {
        "id": f"PR_{rest['id']}",
        "number": pr.number,
        "title": pr.title,
        "body": pr.body or "",
        "url": rest["html_url"],
        "author": _actor(pr.author),
        "createdAt": rest["created_at"],
        "updatedAt": rest["updated_at"],
        "mergedAt": rest["merged_at"],
        "merged": pr.merged_at is not None,
        "state": "MERGED" if pr.merged_at else "CLOSED",
        "baseRefName": rest["base"]["ref"],
        "baseRefOid": rest["base"]["sha"],
        "headRefOid": rest["head"]["sha"],
        "mergeCommit": {"oid": rest["merge_commit_sha"]} if rest["merge_commit_sha"] else None,
        "labels": lambda info, **args: _connection([{"name": n} for n in pr.labels], args, lambda x: x),
        "comments": lambda info, **args: _comments(pr, args, state),
        "reviews": lambda info, **args: _connection(
            _kind(pr, "review"),
            args,
            lambda c: {
                "databaseId": _int32(c[1]),
                "fullDatabaseId": str(c[1]),
                "body": c[0].body,
                "author": _actor(c[0].author),
                "createdAt": _iso(c[0].created_at),
                "submittedAt": _iso(c[0].created_at),
                "state": "COMMENTED",
            },
        ),
        "reviewThreads": lambda info, **args: _connection(
            _kind(pr, "review_comment"),
            args,
            lambda c: {
                "path": c[0].path,
                "line": c[0].line,
                "isResolved": False,
                "comments": lambda info, **a: _connection([c], a, _review_comment),
            },
        ),
        "files": lambda info, **args: _connection(
            pr.files,
            args,
            lambda f: {
                "path": f.path,
                "additions": f.additions,
                "deletions": f.deletions,
                "changeType": _CHANGE_TYPES.get(f.status, "MODIFIED"),
            },
        ),
    }


def _comments(pr: PRRecord, args: dict, state: dict) -> dict[str, Any]:
    if state.get("break"):
        state["break"] = False
        raise RuntimeError(PARTIAL_ERROR)
    return _connection(
        _kind(pr, "issue"),
        args,
        lambda c: {
            "databaseId": _int32(c[1]),
            "fullDatabaseId": str(c[1]),
            "body": c[0].body,
            "author": _actor(c[0].author),
            "createdAt": _iso(c[0].created_at),
        },
    )


def _review_comment(c: tuple[CommentRecord, int]) -> dict[str, Any]:
    comment, database_id = c
    return {
        "databaseId": _int32(database_id),
        "fullDatabaseId": str(database_id),
        "body": comment.body,
        "author": _actor(comment.author),
        "createdAt": _iso(comment.created_at),
        "path": comment.path,
        "line": comment.line,
        "originalLine": comment.line,
        "diffHunk": comment.diff_hunk,
    }


def _kind(pr: PRRecord, kind: str) -> list[tuple[CommentRecord, int]]:
    from corpus.github.server import _comment_id

    return [(c, _comment_id(pr, c, i)) for i, c in enumerate(c for c in pr.comments if c.kind == kind)]


def _int32(value: int) -> int | None:
    return value if value < 2**31 else None  # GitHub's databaseId is an Int; fullDatabaseId carries any id


def _actor(login: str | None) -> dict[str, Any] | None:
    return {"login": login, "__typename": "User"} if login else None


def _iso(moment) -> str | None:
    from corpus.github.server import _iso as iso

    return iso(moment)


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:v2:{index}".encode()).decode()


def _offset(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        return int(base64.b64decode(cursor).decode().rsplit(":", 1)[1])
    except (ValueError, IndexError, UnicodeDecodeError):
        raise GraphQLError(f"`{cursor}` does not appear to be a valid cursor.") from None


def _connection(items: list, args: dict, shape: Callable[[Any], Any]) -> dict[str, Any]:
    after, before = _offset(args.get("after")), _offset(args.get("before"))
    start = 0 if after is None else after + 1
    stop = len(items) if before is None else min(before, len(items))
    window = list(range(start, max(start, stop)))
    if args.get("first") is not None:
        window = window[: args["first"]]
    elif args.get("last") is not None:
        window = window[-args["last"] :] if args["last"] else []
    return {
        "nodes": [shape(items[i]) for i in window],
        "totalCount": len(items),
        "pageInfo": {
            "hasNextPage": bool(window) and window[-1] + 1 < stop or (not window and start < stop),
            "hasPreviousPage": bool(window) and window[0] > 0,
            "startCursor": _cursor(window[0]) if window else None,
            "endCursor": _cursor(window[-1]) if window else None,
        },
    }
