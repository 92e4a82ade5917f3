"""Corpus forms: what each one refuses, and how it says so."""

from __future__ import annotations

import pytest

from corpus.forms import GitImportForm, RepositoryNamesForm
from corpus.sample.build_git import build_sample_repos


@pytest.mark.django_db
def test_git_import_form_refuses_a_path_that_is_not_a_clone(tmp_path, settings):
    # Every refusal reads the same (issue 14, item 6): the form does not tell which paths exist.
    from corpus.forms import import_path_error

    settings.HRGC_IMPORT_ROOT = tmp_path
    (tmp_path / "plain").mkdir()
    missing = GitImportForm({"path": str(tmp_path / "nope")})
    assert not missing.is_valid() and missing.errors["path"] == [import_path_error()]
    plain = GitImportForm({"path": str(tmp_path / "plain")})
    assert not plain.is_valid() and plain.errors["path"] == [import_path_error()]
    clone = build_sample_repos(tmp_path / "clones")[0]
    (clone / "sub").mkdir()
    inside = GitImportForm({"path": str(clone / "sub")})
    assert not inside.is_valid() and inside.errors["path"] == [import_path_error()]
    good = GitImportForm({"path": str(clone)})
    assert good.is_valid(), good.errors


def test_a_bad_pasted_line_gives_one_error():
    form = RepositoryNamesForm({"names": "not a repo\nacme/ok\nbad"})
    assert not form.is_valid()
    assert [e.split(":")[0] for e in form.errors["names"]] == ["line 1", "line 3"]
